/**
 * The exit codes `shoal --help` promises for a mesh that cannot be reached (4) and for a command
 * interrupted by Ctrl-C (130), with the binary and real agents.
 */
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import {
  isRunning,
  processesWith,
  SHOAL_BIN,
  sleepers,
  startMesh,
  type TestMesh,
  writeTopology,
} from "./_harness.ts";
import { waitFor } from "./_wait.ts";

const RUN = 10_000 + Math.floor(Math.random() * 80_000);

/** `shoal args…` in the mesh's session, as a child the test can signal. */
function spawnShoal(mesh: TestMesh, args: string[]) {
  const child = new Deno.Command(SHOAL_BIN, {
    args: [...args, "--session", mesh.session],
    env: mesh.home.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const reading = Promise.all([child.stdout, child.stderr].map(async (s) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) out += c;
  }));
  let status: Deno.CommandStatus | undefined;
  const exited = child.status.then(async (s) => {
    await reading;
    return (status = s);
  });
  return {
    child,
    output: () => out,
    done: () => status,
    /** Resolves with the status; SIGKILLs the child if it has not ended within `timeoutMs`. */
    async ended(timeoutMs: number): Promise<Deno.CommandStatus> {
      try {
        await waitFor(() => status, { timeout: timeoutMs, what: `shoal ${args.join(" ")} to end:\n${out}` });
      } finally {
        if (!status) child.kill("SIGKILL");
      }
      return await exited;
    },
  };
}

Deno.test("exit codes: 4 when no agent of the session answers, with one line saying what to check", async () => {
  await using mesh = await startMesh({ agents: 1 });
  const file = writeTopology(mesh.home.dir, "t.xml", sleepers("T", 1, Number(`4301${RUN}`)));
  const agent = mesh.agents[0]!;
  process.kill(agent.pid, "SIGKILL");
  await waitFor(() => !isRunning(agent.pid), { what: "the agent to die" });
  for (const args of [["info"], ["ps"], ["topology", "activate", file]]) {
    const r = await mesh.run(args, { timeoutMs: 30_000 });
    assertEquals(r.code, 4, `shoal ${args.join(" ")}: ${r.stdout}\n${r.stderr}`);
    assertStringIncludes(r.stderr, `No agent of session "${mesh.session}" answered`);
    assertStringIncludes(r.stderr, "shoal up");
    assertEquals(r.stderr.trim().split("\n").length, 1, `one line, no stack trace: ${r.stderr}`);
  }
  assertEquals(processesWith(`sleep 4301${RUN}`), []);
});

Deno.test("exit codes: 130 when SIGINT interrupts a topology activate that is waiting on an agent", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const marker = `sleep 4302${RUN}`;
  const file = writeTopology(mesh.home.dir, "wait.xml", sleepers("Wait", 4, Number(`4302${RUN}`)));
  // A stopped agent still counts as alive for a few seconds but never answers its lease: the activation
  // starts the other agent's two tasks, then waits.
  const frozen = mesh.agents[1]!;
  process.kill(frozen.pid, "SIGSTOP");
  try {
    const act = spawnShoal(mesh, ["topology", "activate", file]);
    await waitFor(() => processesWith(marker).length === 2 || act.done(), {
      timeout: 20_000,
      what: "the first agent's tasks to start",
    });
    assert(!act.done(), `activate ended before it was interrupted: ${act.output()}`);
    act.child.kill("SIGINT");
    const status = await act.ended(10_000);
    assertEquals(status.code, 130, `activate after SIGINT: ${JSON.stringify(status)} ${act.output()}`);
  } finally {
    process.kill(frozen.pid, "SIGCONT");
  }
});

Deno.test({
  name: "exit codes: 130 when SIGINT interrupts a running monitor",
  async fn() {
    await using mesh = await startMesh({ agents: 1 });
    const monitor = spawnShoal(mesh, ["monitor", "--json"]);
    await waitFor(() => monitor.output().includes('"agent:joined"') || monitor.done(), {
      timeout: 20_000,
      what: "the monitor to print the agent",
    });
    assert(!monitor.done(), `monitor ended on its own: ${monitor.output()}`);
    monitor.child.kill("SIGINT");
    const status = await monitor.ended(10_000);
    assertEquals(status.code, 130, `monitor after SIGINT: ${JSON.stringify(status)}`);
  },
});

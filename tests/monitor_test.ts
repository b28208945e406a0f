/**
 * `shoal monitor` for people — the redrawing board on a terminal (a real pseudo-terminal from util-linux
 * `script`), coloured event lines when piped — and `shoal top`, on a real local mesh.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { SHOAL_BIN, startMesh, type TestMesh, writeTopology } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[a-zA-Z]/g;

function topology(mesh: TestMesh): string {
  return writeTopology(
    mesh.home.dir,
    "watch.xml",
    `<topology name="Watch">
  <decltask name="Spin"><exe reachable="true">sh -c 'while :; do :; done'</exe></decltask>
  <decltask name="Crasher"><exe reachable="true">sh -c 'sleep 1; exit 7'</exe></decltask>
  <decltask name="Nap"><exe reachable="true">sleep 600</exe></decltask>
  <main name="main"><task>Spin</task><task>Crasher</task><group name="g" n="2"><task>Nap</task></group></main>
</topology>`,
  );
}

/** Runs a command, collecting its output; killed on dispose. */
function collect(cmd: string, args: string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(cmd, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number>((r) => child.once("exit", (code) => r(code ?? 128)));
  return {
    output: () => out,
    exited,
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

Deno.test("monitor: on a terminal a board of agents and topologies redraws; piped, event lines are coloured", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 3 });
  const env = { ...mesh.home.env, NO_COLOR: "" };
  const monitor = `${SHOAL_BIN} monitor --session ${mesh.session} --timeout 60`;
  await using board = collect("script", ["-qfec", monitor, "/dev/null"], { ...env, TERM: "xterm" });
  await using lines = collect(SHOAL_BIN, ["monitor", "--session", mesh.session, "--timeout", "60"], env);
  await waitFor(() => board.output().includes("No active topology."), {
    timeout: 20_000,
    what: "the first board",
  });
  const act = await mesh.run(["topology", "activate", topology(mesh)]);
  assertEquals(act.code, 0, act.stderr);
  const last = () => {
    const text = board.output();
    const screen = text.slice(text.lastIndexOf("\x1b[2J"));
    return screen.replace(ANSI, "");
  };
  await waitFor(() => /Watch\s+Watch\s+4\s+3 running, 1 crashed\s+0/.test(last()), {
    timeout: 30_000,
    what: "the board to show the topology with its crash",
  });
  const screen = last();
  assertStringIncludes(screen, `shoal monitor — session "${mesh.session}"  2 agent(s) alive`);
  assertEquals(screen.split("\n").filter((l) => /^\S+\s+…\S{8}\s+alive\s+\d\/3/.test(l)).length, 2, screen);
  assertStringIncludes(screen, "task:exited      main/Crasher_0");
  // The crash in red on the board, and on the piped event lines.
  assertStringIncludes(board.output(), "\x1b[31m1 crashed");
  await waitFor(() => lines.output().includes("task:exited"), { timeout: 20_000, what: "the crash line" });
  const crash = lines.output().split("\n").find((l) => l.includes("task:exited") && l.includes("Crasher_0"))!;
  assert(crash.startsWith("\x1b[31m") && crash.includes("(code 7)"), JSON.stringify(crash));
  const started = lines.output().split("\n").find((l) => l.includes("task:started"))!;
  assert(started.startsWith("\x1b[32m"), JSON.stringify(started));
});

Deno.test("top: the busiest task across the mesh comes first, with its CPU and memory", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const act = await mesh.run(["topology", "activate", topology(mesh)]);
  assertEquals(act.code, 0, act.stderr);
  const r = await mesh.run(["top", "--json", "--interval", "1.5"]);
  assertEquals(r.code, 0, r.stderr);
  const top = JSON.parse(r.stdout) as {
    intervalMs: number;
    tasks: { path: string; cpuPercent: number; rssBytes: number; processes: number; host: string }[];
  };
  assertEquals(top.intervalMs, 1500);
  assertEquals(top.tasks[0]?.path, "main/Spin_0");
  const naps = top.tasks.filter((t) => t.path.startsWith("main/g/Nap_"));
  assertEquals(naps.length, 2);
  // How much of a core the spinner gets depends on what else the machine runs; sleepers get none.
  const spin = top.tasks[0]!.cpuPercent;
  assert(
    spin > 1 && naps.every((t) => t.cpuPercent < spin),
    `spinner ${spin}%, sleepers ${JSON.stringify(naps)}`,
  );
  assert(naps.every((t) => t.rssBytes > 100_000 && t.processes === 1), JSON.stringify(naps));
  const table = await mesh.run(["top", "--once", "--interval", "1", "-n", "1"]);
  assertEquals(table.code, 0, table.stderr);
  const rows = table.stdout.trim().split("\n");
  assertStringIncludes(rows[0]!, "running task(s), the busiest 1");
  assertEquals(rows.length, 4, table.stdout);
  assertStringIncludes(rows[3]!, "main/Spin_0");
  const bad = await mesh.run(["top", "--interval", "0"]);
  assertEquals(bad.code, 2);
});

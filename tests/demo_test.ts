/**
 * The main job: `deno task start` (the build, then `scripts/start.ts`, which runs `shoal demo`) from a
 * clean `SHOAL_HOME` to the end.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { createHome, isRunning, SHOAL_BIN } from "./_harness.ts";
import { describeProcesses, processesUnder } from "./_procs.ts";
import { waitFor } from "./_wait.ts";

const START = fileURLToPath(new URL("../scripts/start.ts", import.meta.url));
const DIST = fileURLToPath(new URL("../dist/shoal", import.meta.url));

/** The steps `shoal demo` prints, in order (each as the `$ shoal …` line a user would type). */
const STEPS = [
  "$ shoal down --grace 2",
  "$ shoal up --agents 3 --slots 4",
  "$ shoal topology view ",
  "$ shoal monitor --timeout 4 &",
  "$ shoal topology activate ",
  "$ shoal ps",
  "$ shoal logs producer|flaky|sampler",
  "$ shoal info",
  "$ shoal topology stop --grace 2",
  "$ shoal down",
];

Deno.test("demo: `deno task start` runs the sample topology, prints every step, exits 0 and leaves nothing running", async () => {
  await using home = createHome();
  // scripts/start.ts runs dist/shoal; a binary given by SHOAL_TEST_BIN is run as `shoal demo` directly.
  const [cmd, args] = SHOAL_BIN === DIST ? [Deno.execPath(), ["run", "-A", START]] : [SHOAL_BIN, ["demo"]];
  const child = new Deno.Command(cmd, { args, env: home.env, stdout: "piped", stderr: "piped" }).spawn();
  let out = "";
  let err = "";
  const reading = Promise.all([
    (async () => {
      for await (const c of child.stdout.pipeThrough(new TextDecoderStream())) out += c;
    })(),
    (async () => {
      for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) err += c;
    })(),
  ]);
  let status: Deno.CommandStatus | undefined;
  const exited = child.status.then((s) => (status = s));
  try {
    // While the topology runs, the check below sees the agents and tasks: it can tell "nothing left".
    await waitFor(() => out.includes('Activated "ShoalDemo"') || status, {
      timeout: 90_000,
      what: `the demo to activate its topology; output so far:\n${out}\n${err}`,
    });
    assert(!status, `the demo ended before activating: ${out}\n${err}`);
    const jobs = (JSON.parse(
      readFileSync(join(home.dir, "sessions", "demo", "session.json"), "utf8"),
    ) as { jobs: { id: string }[] }).jobs.map((j) => Number(j.id));
    const during = processesUnder(home.dir);
    assertEquals(jobs.length, 3);
    for (const pid of jobs) assert(during.includes(pid), `agent ${pid} is among the session's processes`);
    assert(during.length > jobs.length + 8, `agents and tasks running:\n${describeProcesses(during)}`);

    await waitFor(() => status, { timeout: 90_000, what: `the demo to finish; output so far:\n${out}` });
    await reading;
    assertEquals(status!.code, 0, `${out}\n${err}`);
    let at = 0;
    for (const step of STEPS) {
      const next = out.indexOf(`\n${step}`, at);
      assert(next >= 0, `step "${step}" printed after the previous ones:\n${out}`);
      at = next + 1;
    }
    assertStringIncludes(out, 'Session "demo" is up: 3 agents, 12 slots');
    assertStringIncludes(out, 'Activated "ShoalDemo": 12 task(s) running on 3 agent(s)');
    assert(/task:started +main\/producers\/producer_0 /.test(out), "the monitor printed task events");
    // The flaky task crashed twice and its RestartTask trigger ran it a third time.
    assertStringIncludes(out, "[main/flaky_0] flaky run 3");
    assert(/main\/flaky_0 .* running +2 /.test(out), "ps shows flaky_0 running after 2 restarts");
    assertStringIncludes(out, "[main/producers/producer_3] producer 3 tick 4");
    assert(/Stopped "ShoalDemo": \d+ task\(s\)/.test(out), "the topology was stopped");
    assertStringIncludes(out, 'Stopped 3 agent(s) of session "demo" (3 cleanly)');
    assertStringIncludes(out, 'Done: the session "demo" ran the sample topology and left nothing running.');

    const left = processesUnder(home.dir);
    assertEquals(left, [], `left running after the demo:\n${describeProcesses(left)}`);
    for (const pid of during) assert(!isRunning(pid), `${pid} outlived the demo`);
  } finally {
    if (!status) child.kill("SIGKILL");
    await exited;
    await reading.catch(() => {});
    for (const pid of processesUnder(home.dir)) process.kill(pid, "SIGKILL");
  }
});

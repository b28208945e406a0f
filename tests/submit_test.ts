/**
 * `shoal submit --rms localhost` through the CLI (DDS `dds-submit`): the first submission founds the
 * session's mesh, the next joins it, and `shoal down` stops every agent it started.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { createHome, isRunning } from "./_harness.ts";
import { describeProcesses, processesUnder } from "./_procs.ts";

interface SubmitJson {
  session: string;
  rms: string;
  requested: number;
  started: number;
  slots: number;
  agents: { job: string; id: string; addrs: string[] }[];
  failures: unknown[];
}

Deno.test("submit: --rms localhost founds a session's mesh, then adds agents to it; down stops them all", async () => {
  await using home = createHome();
  const session = ["--session", "sub"];
  try {
    const first = await home.run([
      "submit",
      "--rms",
      "localhost",
      "-n",
      "1",
      "--slots",
      "2",
      "--json",
      ...session,
    ]);
    assertEquals(first.code, 0, first.stderr);
    const founded = JSON.parse(first.stdout) as SubmitJson;
    assertEquals([founded.session, founded.rms, founded.started, founded.slots], ["sub", "localhost", 1, 2]);

    const more = await home.run(["submit", "--rms", "localhost", "-n", "2", "--slots", "3", ...session]);
    assertEquals(more.code, 0, more.stderr);
    assertStringIncludes(more.stdout, 'Started 2 agent(s) with 6 slots in session "sub" via localhost');

    const info = await home.run(["info", "--json", ...session]);
    assertEquals(info.code, 0, info.stderr);
    const agents = (JSON.parse(info.stdout) as {
      agents: { id: string; state: string; slots: { total: number } }[];
    }).agents;
    assertEquals(agents.length, 3);
    assert(agents.every((a) => a.state === "alive"), info.stdout);
    assertEquals(agents.map((a) => a.slots.total).sort(), [2, 3, 3]);
    assert(agents.some((a) => a.id === founded.agents[0]!.id), "the founding agent is in the mesh");

    const jobs = (JSON.parse(readFileSync(join(home.dir, "sessions", "sub", "session.json"), "utf8")) as {
      jobs: { id: string; rms: string }[];
    }).jobs;
    assertEquals(jobs.map((j) => j.rms), ["localhost", "localhost", "localhost"]);
    const pids = jobs.map((j) => Number(j.id));
    assert(pids.every(isRunning), "every submitted agent runs");

    const down = await home.run(["down", "--json", ...session]);
    assertEquals(down.code, 0, down.stderr);
    assertEquals((JSON.parse(down.stdout) as { stopped: number }).stopped, 3);
    for (const pid of pids) assert(!isRunning(pid), `agent ${pid} outlived down`);
    const left = processesUnder(home.dir);
    assertEquals(left, [], `left running after down:\n${describeProcesses(left)}`);
  } finally {
    await home.run(["down", "--grace", "1", ...session]);
  }
});

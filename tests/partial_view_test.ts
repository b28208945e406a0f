/**
 * The CLI over partial views: a session file that names only some agents still reaches every agent of the
 * view (dialled at the view's addresses), and an agent alive in the view that does not answer is named on
 * stderr after the result, with exit code 6 and no stack trace.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ps, type PsTask, sleepers, startMesh, writeTopology } from "./_harness.ts";

const RUN = 10_000 + Math.floor(Math.random() * 80_000);

Deno.test("cli: a session naming one agent still lists every agent's tasks; a silent agent is named, exit 6", async () => {
  await using mesh = await startMesh({ agents: 3, slots: 1 });
  const file = writeTopology(mesh.home.dir, "part.xml", sleepers("Part", 3, Number(`4401${RUN}`)));
  const act = await mesh.run(["topology", "activate", file]);
  assertEquals(act.code, 0, act.stderr);
  // Keep only the first agent in session.json: the others are known from its view alone.
  const sessionFile = join(mesh.home.dir, "sessions", mesh.session, "session.json");
  const record = JSON.parse(readFileSync(sessionFile, "utf8")) as { jobs: { peerId: string }[] };
  const [first, ...rest] = mesh.agents;
  writeFileSync(sessionFile, JSON.stringify({ ...record, jobs: record.jobs.slice(0, 1) }));
  const all = await ps(mesh);
  assertEquals(all.length, 3, "tasks of agents absent from session.json are listed too");

  // An agent that stops answering (SIGSTOP) but is still alive or suspect in the view.
  const silent = rest[0]!;
  process.kill(silent.pid, "SIGSTOP");
  try {
    const r = await mesh.run(["ps", "--json"], { timeoutMs: 40_000 });
    assertEquals(r.code, 6, r.stderr);
    const tasks = (JSON.parse(r.stdout) as { tasks: PsTask[] }).tasks;
    assertEquals(
      tasks.map((t) => t.agent).sort(),
      all.filter((t) => t.agent !== silent.id).map((t) => t.agent).sort(),
    );
    assert(r.stderr.includes("did not answer") && r.stderr.includes(silent.id), r.stderr);
    assert(!/AbortError|\n\s+at /.test(r.stderr), `no stack trace: ${r.stderr}`);
    const info = await mesh.run(["info"], { timeoutMs: 40_000 });
    assert(info.code === 6 || info.code === 0, info.stderr); // 0 once the view has it dead
    assert(!/-\d+m\d+s|-\d+s/.test(info.stdout), `no negative uptime: ${info.stdout}`);
  } finally {
    process.kill(silent.pid, "SIGCONT");
  }
  void first;
});

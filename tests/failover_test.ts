/**
 * Commander failover: when an agent dies, the alive agent with the lowest peer ID — and no other — takes
 * over its topologies and re-places its tasks. Who acted is read from the agents' own logs.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  isRunning,
  processesWith,
  ps,
  sleepers,
  startMesh,
  type TestAgent,
  writeTopology,
} from "./_harness.ts";
import { waitFor } from "./_wait.ts";

const RUN = 10_000 + Math.floor(Math.random() * 80_000);
const TAKEOVER = "agent died; re-placing its tasks";

function logOf(dataDir: string): string {
  try {
    return readFileSync(join(dataDir, "agent.log"), "utf8");
  } catch {
    return "";
  }
}

Deno.test("failover: only the alive agent with the lowest peer ID re-places a dead agent's tasks", async () => {
  await using mesh = await startMesh({ agents: 4, slots: 2 });
  const file = writeTopology(mesh.home.dir, "fail.xml", sleepers("Fail", 8, Number(`4201${RUN}`)));
  const act = await mesh.run(["topology", "activate", file]);
  assertEquals(act.code, 0, act.stderr);
  // Every slot is taken; one more agent brings the only free ones, so the re-placed tasks must go there.
  const sub = await mesh.run(["submit", "--rms", "localhost", "-n", "1", "--slots", "2", "--json"]);
  assertEquals(sub.code, 0, sub.stderr);
  const added = (JSON.parse(sub.stdout) as { agents: { id: string }[] }).agents[0]!.id;
  const jobs = (JSON.parse(
    readFileSync(join(mesh.home.dir, "sessions", mesh.session, "session.json"), "utf8"),
  ) as { jobs: { id: string; peerId: string; dataDir: string; addrs: string[] }[] }).jobs;
  const agents: TestAgent[] = jobs.map((j) => ({
    id: j.peerId,
    pid: Number(j.id),
    dataDir: j.dataDir,
    addrs: j.addrs,
  }));
  assertEquals(agents.length, 5);

  const before = await ps(mesh);
  assertEquals(before.length, 8);
  // The victim is the lowest peer ID of the full agents, so the taker is never simply "the lowest ever seen".
  const victim = [...mesh.agents].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
  const lost = before.filter((t) => t.agent === victim.id);
  assertEquals(lost.length, 2, "the victim runs 2 tasks");
  process.kill(victim.pid, "SIGKILL");
  const alive = agents.filter((a) => a !== victim && a.id !== victim.id);
  const taker = [...alive].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;

  await waitFor(async () => {
    const tasks = await ps(mesh);
    return tasks.length === 8 && tasks.every((t) => t.state === "running" && t.agent !== victim.id);
  }, { timeout: 30_000, what: "the victim's tasks to run elsewhere" });
  const after = await ps(mesh);
  for (const t of lost) assertEquals(after.find((a) => a.path === t.path)?.agent, added, `${t.path} moved`);
  assert(lost.every((t) => !isRunning(t.pid!)), "the victim's own task processes died with it");
  assertEquals(processesWith(`sleep 4201${RUN}`).length, 8);
  // Every survivor has seen the death, so each one has made its choice by now.
  for (const a of alive) {
    await waitFor(async () => {
      const view = await mesh.viewOf(a);
      return view.members.find((m) => m.id === victim.id)?.state === "dead";
    }, { timeout: 20_000, what: `agent ${a.id} to mark the victim dead` });
  }

  const takeovers = alive.map((a) => ({
    id: a.id,
    lines: logOf(a.dataDir).split("\n").filter((l) => l.includes(TAKEOVER) && l.includes(victim.id)),
  }));
  const acted = takeovers.filter((t) => t.lines.length > 0);
  assertEquals(acted.map((t) => t.id), [taker.id], `who re-placed: ${JSON.stringify(takeovers)}`);
  assertEquals(acted[0]!.lines.length, 1, "the taker re-placed once");
  assert(/topology=Fail tasks=2/.test(acted[0]!.lines[0]!), acted[0]!.lines[0]);
  assert(/tasks re-placed topology=Fail placed=2 lost=0/.test(logOf(taker.dataDir)), logOf(taker.dataDir));
});

/**
 * Chaos: agents crashing together, on one host (no namespaces needed). Two of six agents SIGKILLed in the
 * same second: their tasks are re-placed once each — by one agent, under distinct epochs — and the record
 * ends with neither dead agent in it and as many tasks as the topology has; `shoal ps`, `shoal info` and
 * the processes agree. A crash is told from a partition by the dead agents' refused ports, so the four left
 * (a majority of six anyway) act at once.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { topologyRecord } from "../_commanders.ts";
import { isRunning, processesWith, ps, sleepers, startMesh, writeTopology } from "../_harness.ts";
import { agentLog } from "../_netns.ts";
import { waitFor } from "../_wait.ts";

const RUN = 10_000 + Math.floor(Math.random() * 80_000);

Deno.test("chaos: two agents SIGKILLed in the same second are each re-placed once, and the record lists neither", async () => {
  await using mesh = await startMesh({ agents: 6, slots: 2 });
  const file = writeTopology(mesh.home.dir, "pair.xml", sleepers("Pair", 6, Number(`4301${RUN}`)));
  const act = await mesh.run(["topology", "activate", file]);
  assertEquals(act.code, 0, act.stderr);
  const before = await ps(mesh);
  const holders = [...new Set(before.map((t) => t.agent))];
  const victims = mesh.agents.filter((a) => holders.includes(a.id)).slice(0, 2);
  assertEquals(victims.length, 2);
  const lostPaths = before.filter((t) => victims.some((v) => v.id === t.agent)).map((t) => t.path).sort();
  for (const v of victims) process.kill(v.pid, "SIGKILL");
  const gone = new Set(victims.map((v) => v.id));
  const survivors = mesh.agents.filter((a) => !gone.has(a.id));

  await waitFor(async () => {
    const tasks = await ps(mesh);
    return tasks.length === 6 && tasks.every((t) => t.state === "running" && !gone.has(t.agent));
  }, { timeout: 30_000, what: "the victims' tasks to run on the survivors" });
  assertEquals(processesWith(`sleep 4301${RUN}`).length, 6, "six processes, none twice");
  assert(before.filter((t) => gone.has(t.agent)).every((t) => !isRunning(t.pid!)));

  const record = await waitFor(async () => {
    const r = await topologyRecord(mesh, survivors[0]!, "Pair");
    return r && Object.keys(r.placement).every((a) => !gone.has(a)) ? r : undefined;
  }, { timeout: 10_000, what: "a record without the dead agents" });
  assertEquals(Object.values(record.placement).flat().sort(), (await ps(mesh)).map((t) => t.path).sort());
  const info = await mesh.run(["info", "--json"]);
  assertEquals(info.code, 0, info.stderr);
  assertEquals((JSON.parse(info.stdout) as { topologies: { tasks: number }[] }).topologies[0]!.tasks, 6);

  // One agent acted; each victim was re-placed once; each recovery had its own epoch.
  const lines = survivors.flatMap((a) =>
    agentLog(a.dataDir).split("\n").filter((l) => l.includes("agent died; re-placing")).map((l) => ({
      a: a.id,
      l,
    }))
  );
  assertEquals(new Set(lines.map((x) => x.a)).size, 1, JSON.stringify(lines));
  assertEquals(lines.map((x) => /agent=(\S+)/.exec(x.l)![1]).sort(), victims.map((v) => v.id).sort());
  const epochs = [...new Set(lines.map((x) => Number(/epoch=(\d+)/.exec(x.l)![1])))];
  assertEquals(record.epoch, 1 + epochs.length, `epochs ${epochs} → record ${record.epoch}`);
  const moved = (await ps(mesh)).filter((t) => lostPaths.includes(t.path));
  assertEquals(moved.length, lostPaths.length);
});

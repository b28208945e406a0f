/**
 * All or nothing when the commander dies half-way: a real agent, and a real light peer that leases slots
 * and starts tasks like a commander does, records one topology and not the other, then goes away.
 */
import { assertEquals } from "./_assert.ts";
import { putTopology } from "../agent/mod.ts";
import { LEASE_PROTOCOL, LeaseResponseSchema } from "../agent/protocols.ts";
import { createMeshNode, request, writeSwarmKey } from "../mesh/mod.ts";
import { createHome, processesWith, spawnAgent } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

Deno.test("orphans: tasks of a commander that died before recording its topology are stopped; recorded ones stay", async () => {
  await using home = createHome();
  const keyFile = `${home.dir}/swarm.key`;
  const swarmKey = await writeSwarmKey(keyFile);
  await using agent = spawnAgent(home, "a", [
    "--swarm-key",
    keyFile,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--slots",
    "4",
    "--orphan-grace",
    "1",
  ]);
  const info = await agent.ready();
  // Markers in the process table: a run-unique number of seconds per topology.
  const run = String(100_000 + Math.floor(Math.random() * 800_000));
  const marker = (topologyId: string) => `sleep 9${run}${topologyId === "Lost" ? 1 : 2}`;
  const spec = (topologyId: string, i: number) => ({
    topologyId,
    path: `main/t_${i}`,
    id: String(1000 + i),
    name: "t",
    index: i,
    groupName: "main",
    exe: marker(topologyId),
    maxRestarts: 0,
    slotId: "",
    sessionId: "",
  });
  const commander = await createMeshNode({ swarmKey });
  try {
    await commander.dial(info.addrs[0]!);
    for (const topologyId of ["Lost", "Kept"]) {
      const res = await request(commander, info.id, LEASE_PROTOCOL, {
        topologyId,
        epoch: 1,
        commander: commander.peerId,
        tasks: [spec(topologyId, 0), spec(topologyId, 1)],
      }, { schema: LeaseResponseSchema, timeoutMs: 30_000 });
      assertEquals(res.granted, true, JSON.stringify(res));
    }
    const lost = marker("Lost");
    const kept = marker("Kept");
    await waitFor(() => processesWith(lost).length === 2 && processesWith(kept).length === 2 || undefined, {
      timeout: 15_000,
      what: "the four leased tasks to run",
    });
    // The commander records "Kept" (as it does once every task runs) but dies before recording "Lost".
    await putTopology({ node: commander, via: info.id, sessionId: "" }, {
      id: "Kept",
      name: "Kept",
      epoch: 1,
      version: 1,
      commander: commander.peerId,
      state: "active",
      source: "<topology/>",
      file: "kept.xml",
      vars: {},
      placement: { [info.id]: ["main/t_0", "main/t_1"] },
      updatedAt: Date.now(),
    });
    // While the commander is connected, nothing is stopped however long activation takes.
    assertEquals(processesWith(lost).length, 2);
  } finally {
    await commander.stop();
  }
  await waitFor(() => processesWith(marker("Lost")).length === 0 || undefined, {
    timeout: 20_000,
    what: "the unrecorded topology's tasks to be stopped after the commander left",
  });
  assertEquals(processesWith(marker("Kept")).length, 2, "the recorded topology's tasks keep running");
  const log = Deno.readTextFileSync(`${agent.dataDir}/agent.log`);
  assertEquals(log.includes("commander left before its topology was recorded"), true);
  agent.kill("SIGTERM");
  assertEquals(await agent.exited, 0);
  assertEquals(processesWith(marker("Kept")).length, 0);
});

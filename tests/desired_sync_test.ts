/**
 * Topology records converge even when an agent missed their gossip: heartbeats carry a digest of the
 * records, and an agent whose digest keeps differing from a peer's pulls that peer's records.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { putTopology } from "../commander/mod.ts";
import { TOPOLOGIES_PROTOCOL, TopologiesResponseSchema } from "../agent/wire/mod.ts";
import { createMeshNode, request, writeSwarmKey } from "../mesh/mod.ts";
import { assertEquals } from "./_assert.ts";
import { createHome, spawnAgent } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

Deno.test("desired state: an agent that was elsewhere when a topology was recorded gets the record once it meets the mesh", async () => {
  await using home = createHome();
  const keyFile = join(home.dir, "swarm.key");
  const swarmKey = await writeSwarmKey(keyFile);
  const base = ["--swarm-key", keyFile, "--listen", "/ip4/127.0.0.1/tcp/0"];
  // Two agents that do not know each other yet.
  await using b = spawnAgent(home, "b", base);
  await using a = spawnAgent(home, "a", base);
  const [infoB, infoA] = [await b.ready(), await a.ready()];
  await using tool = await createMeshNode({ swarmKey });
  await tool.dial(infoA.addrs[0]!);
  // A records a topology; its gossip reaches nobody, B is not connected.
  await putTopology({ node: tool, via: infoA.id, sessionId: "" }, {
    id: "Early",
    name: "Early",
    epoch: 1,
    version: 1,
    commander: tool.peerId,
    state: "active",
    source: "<topology/>",
    file: "early.xml",
    vars: {},
    placement: {},
    updatedAt: Date.now(),
  });
  // A third agent joins through both: A and B now meet (heartbeats travel through it), long after the gossip.
  await using c = spawnAgent(home, "c", [
    ...base,
    "--bootstrap",
    infoA.addrs[0]!,
    "--bootstrap",
    infoB.addrs[0]!,
  ]);
  await c.ready();
  await tool.dial(infoB.addrs[0]!);
  await waitFor(async () => {
    const res = await request(tool, infoB.id, TOPOLOGIES_PROTOCOL, { op: "list" }, {
      schema: TopologiesResponseSchema,
    });
    return res.records.some((r) => r.id === "Early") || undefined;
  }, { timeout: 30_000, what: "agent B to hold the record agent A had before they met" });
  const logB = readFileSync(join(b.dataDir, "agent.log"), "utf8");
  assertEquals(
    logB.includes("pulled topology records a peer's digest said we lacked"),
    true,
    logB.slice(-2000),
  );
});

import { createMeshNode, createSwarmKey } from "../../mesh/mod.ts";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { DesiredState, newerRecord } from "./desired_state.ts";
import type { TopologyRecord } from "../wire/mod.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];

const rec = (over: Partial<TopologyRecord> = {}): TopologyRecord => ({
  id: "t",
  name: "t",
  epoch: 1,
  version: 1,
  commander: "c1",
  state: "active",
  source: "<topology/>",
  file: "t.xml",
  vars: {},
  placement: { a: ["main/x_0"] },
  updatedAt: 1_000,
  ...over,
});

Deno.test("desired state: epoch, then version, then time, then commander decide which record wins", () => {
  assert(newerRecord(rec({ epoch: 2, version: 1 }), rec({ epoch: 1, version: 9 })), "a higher epoch wins");
  assert(newerRecord(rec({ version: 3 }), rec({ version: 2, updatedAt: 9_999 })), "then the version");
  assert(newerRecord(rec({ updatedAt: 2_000 }), rec({ updatedAt: 1_000 })), "then the time");
  assert(newerRecord(rec({ commander: "c2" }), rec({ commander: "c1" })), "then the commander's ID");
  assert(!newerRecord(rec(), rec()), "a record does not supersede itself");
});

Deno.test("desired state: merges keep the newest record and the digest follows the records, in any order", async () => {
  await using node = await createMeshNode({ swarmKey: createSwarmKey(), listen: LISTEN });
  const a = new DesiredState(node);
  const b = new DesiredState(node);
  const seen: number[] = [];
  a.changes.on((r) => seen.push(r.version));
  const copies = [rec({ version: 1 }), rec({ version: 3, placement: {} }), rec({ version: 2 })];
  for (const r of copies) a.merge(r);
  for (const r of [...copies].reverse()) b.merge(r);
  assertEquals(a.get("t")?.version, 3);
  assertEquals(b.get("t")?.version, 3);
  assertEquals(seen, [1, 3], "an older copy is no change");
  assertEquals(a.digest(), b.digest());
  const before = a.digest();
  a.merge(rec({ id: "u", name: "u" }));
  assert(a.digest() !== before, "a new record changes the digest");
  a.merge(rec({ version: 4, state: "stopped" }));
  assertEquals(a.get("t")?.state, "stopped");
  assertEquals(a.records().map((r) => r.id).sort(), ["t", "u"], "stopped records are kept");
});

Deno.test("desired state: a peer pulls every record it lacks from another (anti-entropy on join)", async () => {
  const swarmKey = createSwarmKey();
  await using n1 = await createMeshNode({ swarmKey, listen: LISTEN });
  await using n2 = await createMeshNode({ swarmKey, listen: LISTEN });
  await using d1 = new DesiredState(n1);
  await using d2 = new DesiredState(n2);
  await d1.start();
  await d2.start();
  d1.merge(rec({ version: 5 }));
  d1.merge(rec({ id: "u", name: "u" }));
  d2.merge(rec({ version: 2 }));
  await n2.dial(n1.addresses()[0]!);
  assertEquals(await d2.syncFrom(n1.peerId, { signal: AbortSignal.timeout(10_000) }), 2);
  assertEquals(d2.get("t")?.version, 5);
  assertEquals(d2.digest(), d1.digest());
  assertEquals(await d2.syncFrom(n1.peerId, { signal: AbortSignal.timeout(10_000) }), 0, "nothing new twice");
});

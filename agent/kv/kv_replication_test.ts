import { assert, assertEquals } from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import { createMeshNode, createSwarmKey, type MeshNode, startMembership } from "../../mesh/mod.ts";
import { KvReplication } from "./kv_replication.ts";
import { KvStore } from "./kv_store.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];
const self = () => ({ host: "h", slots: { total: 1, free: 1 }, version: "t", load: 0 });

async function replica(swarmKey: Uint8Array) {
  const node = await createMeshNode({ swarmKey, listen: LISTEN });
  const membership = await startMembership({
    node,
    self,
    timing: { probeIntervalMs: 200, probeTimeoutMs: 100 },
  });
  const store = new KvStore();
  const repl = new KvReplication({ node, store, membership, antiEntropyMs: 300 });
  await repl.start();
  return {
    node,
    store,
    repl,
    async [Symbol.asyncDispose]() {
      await repl.stop();
      await membership.stop();
      await node.stop();
    },
  };
}

function writeKeys(r: { repl: KvReplication }, who: string, n: number): void {
  for (let i = 0; i < n; i++) {
    r.repl.write({
      topologyId: "t",
      key: `k${who}_${i}`,
      scope: "",
      sender: who,
      path: `main/${who}`,
      value: `${who}-${i}`,
      deleted: false,
    });
  }
}

async function connect(a: MeshNode, b: MeshNode): Promise<void> {
  await a.dial(b.addresses()[0]!);
}

Deno.test("kv: 1,000 keys written on 4 agents converge on every replica", async () => {
  const swarmKey = createSwarmKey();
  await using a = await replica(swarmKey);
  await using b = await replica(swarmKey);
  await using c = await replica(swarmKey);
  await using d = await replica(swarmKey);
  const all = [a, b, c, d];
  for (const x of [b, c, d]) await connect(x.node, a.node);
  await connect(c.node, b.node);
  await connect(d.node, c.node);
  all.forEach((r, i) => writeKeys(r, `w${i}`, 250));
  await waitFor(() => all.every((r) => r.store.size === 1000), {
    timeout: 20_000,
    what: "1,000 keys everywhere",
  });
  assertEquals(new Set(all.map((r) => r.store.digest())).size, 1);
  assertEquals(d.store.values("t", "kw0_7", "").map((e) => e.value), ["w0-7"]);
});

Deno.test("kv: replicas converge after a partition heals (gossip lost meanwhile)", async () => {
  const swarmKey = createSwarmKey();
  await using a = await replica(swarmKey);
  await using b = await replica(swarmKey);
  await connect(b.node, a.node);
  writeKeys(a, "a", 20);
  await waitFor(() => b.store.size === 20, { timeout: 10_000, what: "b to get a's keys" });
  // b is cut off: both sides keep writing; the same writer's later write must win everywhere.
  await b.node.libp2p.hangUp(a.node.libp2p.peerId);
  await waitFor(() => b.node.connectedPeers().length === 0, { what: "the partition" });
  writeKeys(a, "a", 40);
  writeKeys(b, "b", 5);
  b.repl.write({
    topologyId: "t",
    key: "ka_3",
    scope: "",
    sender: "a",
    path: "main/a",
    value: "x",
    deleted: true,
  });
  await a.repl.flush();
  await b.repl.flush();
  assertEquals(b.store.size, 25);
  await connect(b.node, a.node);
  await waitFor(() => a.store.digest() === b.store.digest(), { timeout: 15_000, what: "anti-entropy" });
  assertEquals(a.store.size, 45);
  assert(a.store.values("t", "ka_3", "").length === 0, "the later tombstone won");
});

Deno.test("kv: one value per writer, the later version of a writer wins", () => {
  const store = new KvStore();
  const e = { topologyId: "t", key: "k", scope: "", path: "p", deleted: false };
  assert(store.merge({ ...e, sender: "1", value: "a", version: "000000000000002.000000" }));
  assert(!store.merge({ ...e, sender: "1", value: "old", version: "000000000000001.000000" }));
  assert(store.merge({ ...e, sender: "2", value: "b", version: "000000000000001.000000" }));
  assertEquals(store.values("t", "k", "").map((x) => x.value), ["a", "b"]);
  assertEquals(store.count("t", "k", ""), 2);
  assert(store.merge({ ...e, sender: "1", value: "", deleted: true, version: "000000000000003.000000" }));
  assertEquals(store.count("t", "k", ""), 1);
  assertEquals(store.size, 2);
});

Deno.test("kv: a dropped topology's old entries are removed and refused afterwards, newer ones kept", () => {
  const store = new KvStore();
  const e = { topologyId: "t", key: "k", scope: "", path: "p", deleted: false, value: "v" };
  store.merge({ ...e, sender: "1", version: "000000000000001.000000" });
  store.merge({ ...e, sender: "2", version: "000000000000009.000000" });
  store.merge({ ...e, topologyId: "u", sender: "1", version: "000000000000001.000000" });
  store.dropTopology("t", "000000000000005.000000");
  assertEquals(store.values("t", "k", "").map((x) => x.sender), ["2"]);
  assert(
    !store.merge({ ...e, sender: "1", version: "000000000000004.000000" }),
    "late gossip of the old run",
  );
  assert(store.merge({ ...e, sender: "3", version: "000000000000006.000000" }));
  assertEquals(store.size, 3);
});

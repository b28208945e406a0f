import { assert, assertEquals } from "../../tests/_assert.ts";
import { HybridClock } from "./hlc.ts";
import { type KvEntry, KvStore, newerEntry } from "./kv_store.ts";

const entry = (over: Partial<KvEntry> & { version: string }): KvEntry => ({
  topologyId: "t",
  key: "k",
  scope: "",
  sender: "1",
  path: "main/a_0",
  value: "v",
  deleted: false,
  ...over,
});

Deno.test("kv store: a writer's later version wins whatever order the copies arrive in", () => {
  const clock = new HybridClock(() => 1_000);
  const v1 = clock.tick();
  const v2 = clock.tick();
  assert(v2 > v1, "versions of one clock grow");
  const a = new KvStore();
  const b = new KvStore();
  const old = entry({ version: v1, value: "old" });
  const fresh = entry({ version: v2, value: "new" });
  assert(a.merge(old));
  assert(a.merge(fresh));
  assert(b.merge(fresh));
  assertEquals(b.merge(old), false, "an older copy changes nothing");
  assertEquals(a.values("t", "k", "").map((e) => e.value), ["new"]);
  assertEquals(b.values("t", "k", "").map((e) => e.value), ["new"]);
  assertEquals(a.digest(), b.digest(), "replicas that merged the same entries agree");
  assertEquals(a.merge(fresh), false, "the same entry twice is one change");
});

Deno.test("kv store: writers are kept apart, read in path order, counted live", () => {
  const s = new KvStore();
  s.merge(entry({ sender: "2", path: "main/b_0", value: "B", version: "000000000001000.000002" }));
  s.merge(entry({ sender: "1", path: "main/a_0", value: "A", version: "000000000001000.000001" }));
  s.merge(entry({ key: "other", sender: "3", version: "000000000001000.000003" }));
  s.merge(entry({ scope: "main/coll_1", sender: "4", version: "000000000001000.000004" }));
  assertEquals(s.values("t", "k", "").map((e) => e.value), ["A", "B"]);
  assertEquals(s.count("t", "k", ""), 2);
  assertEquals(s.count("t", "k", "main/coll_1"), 1, "a collection scope is its own slot");
  assertEquals(s.size, 4);
});

Deno.test("kv store: a tombstone hides the value, is kept for replication, and loses to a later write", () => {
  const s = new KvStore();
  const seen: KvEntry[] = [];
  s.changes.on((e) => seen.push(e));
  s.merge(entry({ version: "000000000001000.000001", value: "x" }));
  assert(s.merge(entry({ version: "000000000002000.000001", deleted: true, value: "" })));
  assertEquals(s.values("t", "k", ""), []);
  assertEquals(s.count("t", "k", ""), 0);
  assertEquals(s.size, 1, "the tombstone stays");
  assertEquals(s.entries("t").map((e) => e.deleted), [true]);
  assert(s.merge(entry({ version: "000000000003000.000001", value: "back" })));
  assertEquals(s.values("t", "k", "").map((e) => e.value), ["back"]);
  assertEquals(s.count("t", "k", ""), 1);
  assertEquals(seen.length, 3, "every change is announced once");
});

Deno.test("kv store: equal versions break ties the same way on every replica", () => {
  const v = "000000000001000.000001";
  const del = entry({ version: v, deleted: true, value: "" });
  const live = entry({ version: v, value: "z" });
  assert(newerEntry(del, live), "a delete beats a write of the same version");
  assert(!newerEntry(live, del));
  const low = entry({ version: v, value: "a" });
  assert(newerEntry(live, low), "then the larger value");
  const x = new KvStore();
  const y = new KvStore();
  for (const e of [low, live, del]) x.merge(e);
  for (const e of [del, live, low]) y.merge(e);
  assertEquals(x.digest(), y.digest());
  assertEquals(x.entries(), y.entries());
});

Deno.test("kv store: dropping a topology forgets its values up to the floor and refuses late copies", () => {
  const s = new KvStore();
  s.merge(entry({ version: "000000000001000.000001" }));
  s.merge(entry({ topologyId: "u", version: "000000000001000.000001" }));
  const before = s.digest();
  s.dropTopology("t", "000000000001500.000000");
  assertEquals(s.entries("t"), []);
  assertEquals(s.entries("u").length, 1, "other topologies stay");
  assert(s.digest() !== before, "the digest changes with the drop");
  assertEquals(
    s.merge(entry({ version: "000000000001200.000002", sender: "2" })),
    false,
    "late gossip of the run",
  );
  assert(s.merge(entry({ version: "000000000002000.000002", sender: "2" })), "the next run writes again");
  s.dropTopology("t", "000000000001000.000000");
  assertEquals(s.entries("t").length, 1, "a lower floor does not lower the bar");
});

Deno.test("kv store: a write older than the tombstone does not bring the value back, in either order", () => {
  const write = entry({ version: "000000000001000.000001", value: "x" });
  const tomb = entry({ version: "000000000002000.000001", deleted: true, value: "" });
  const late = new KvStore();
  late.merge(tomb);
  assertEquals(late.merge(write), false, "the older write arriving after the delete changes nothing");
  assertEquals(late.values("t", "k", ""), []);
  assertEquals(late.count("t", "k", ""), 0);
  const inOrder = new KvStore();
  inOrder.merge(write);
  inOrder.merge(tomb);
  assertEquals(inOrder.merge(write), false, "nor does a copy of it gossiped again");
  assertEquals(late.digest(), inOrder.digest(), "both replicas hold the tombstone alone");
  assertEquals(late.entries(), [tomb]);
});

Deno.test("kv store: a tombstone removes its writer's value only; the digest tells it from the value", () => {
  const s = new KvStore();
  const v = "000000000001000.000001";
  s.merge(entry({ sender: "1", path: "main/a_0", version: v, value: "A" }));
  s.merge(entry({ sender: "2", path: "main/b_0", version: v, value: "B" }));
  const live = s.digest();
  assert(s.merge(entry({ sender: "1", path: "main/a_0", version: "000000000002000.000001", deleted: true })));
  assertEquals(s.values("t", "k", "").map((e) => e.value), ["B"], "the other writer's value stays");
  assertEquals(s.count("t", "k", ""), 1);
  assert(
    s.digest() !== live,
    "a replica that missed the delete differs by digest, so anti-entropy repairs it",
  );
  assertEquals(
    s.merge(entry({ sender: "1", path: "main/a_0", version: "000000000002000.000001", deleted: true })),
    false,
    "the same tombstone twice is one change",
  );
});

Deno.test("kv store: a tombstone and a write of equal version agree on every replica whatever the order", () => {
  const v = "000000000001000.000007";
  const del = entry({ version: v, deleted: true, value: "" });
  const live = entry({ version: v, value: "z" });
  const a = new KvStore();
  const b = new KvStore();
  assert(a.merge(live));
  assert(a.merge(del), "the delete supersedes the write of the same version");
  assert(b.merge(del));
  assertEquals(b.merge(live), false, "and the write does not supersede the delete");
  for (const s of [a, b]) {
    assertEquals(s.values("t", "k", ""), []);
    assertEquals(s.count("t", "k", ""), 0);
    assertEquals(s.size, 1);
  }
  assertEquals(a.digest(), b.digest());
});

import { assertEquals } from "../tests/_assert.ts";
import { SlotTable } from "./slots.ts";

Deno.test("slots: a lease is granted whole or refused whole", () => {
  const t = new SlotTable(3);
  const a = t.grant("topo", 1, ["a", "b"]);
  assertEquals(a.ok && [...a.slots.values()], ["0", "1"]);
  const b = t.grant("topo", 1, ["c", "d"]);
  assertEquals(b, { ok: false, reason: "full", free: 1, wanted: 2 });
  assertEquals(t.free, 1);
});

Deno.test("slots: two commanders racing for the last slot: one wins, one is refused", () => {
  const t = new SlotTable(1);
  assertEquals(t.grant("x", 1, ["x1"]).ok, true);
  assertEquals(t.grant("y", 1, ["y1"]).ok, false);
});

Deno.test("slots: a stale epoch is refused, a newer one accepted", () => {
  const t = new SlotTable(4);
  t.grant("topo", 2, ["a"]);
  assertEquals(t.grant("topo", 1, ["b"]), { ok: false, reason: "stale-epoch", epoch: 1, current: 2 });
  assertEquals(t.grant("topo", 3, ["b"]).ok, true);
});

Deno.test("slots: a path already leased is refused as duplicate", () => {
  const t = new SlotTable(4);
  t.grant("topo", 1, ["a"]);
  assertEquals(t.grant("topo", 1, ["a"]), { ok: false, reason: "duplicate", path: "a" });
  assertEquals(t.grant("other", 1, ["a"]).ok, true);
});

Deno.test("slots: release frees named paths or the whole topology", () => {
  const t = new SlotTable(4);
  t.grant("topo", 1, ["a", "b", "c"]);
  assertEquals(t.release("topo", ["b", "zz"]), 1);
  assertEquals(t.leased("topo"), ["a", "c"]);
  assertEquals(t.release("topo"), 2);
  assertEquals([t.free, t.topologies()], [4, []]);
});

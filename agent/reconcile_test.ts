import { assertEquals } from "../tests/_assert.ts";
import type { TopologyRecord } from "./protocols.ts";
import { reconcileRecord } from "./reconcile.ts";

function record(epoch: number, placement: Record<string, string[]>, state = "active"): TopologyRecord {
  return {
    id: "t",
    name: "t",
    epoch,
    version: 1,
    commander: "c",
    state: state as "active",
    source: "",
    file: "t.xml",
    vars: {},
    placement,
    updatedAt: 0,
  };
}

Deno.test("reconcile: an instance from an older epoch whose path runs elsewhere is stopped (keep_replacement)", () => {
  const d = reconcileRecord("me", record(2, { other: ["p0"], me: ["p1"] }), [
    { path: "p0", epoch: 1 },
    { path: "p1", epoch: 1 },
  ]);
  assertEquals([...d.stop], [["p0", "other"]]);
  assertEquals(d.adopt, []);
});

Deno.test("reconcile: an instance the record places nowhere is the only one, and is adopted", () => {
  const d = reconcileRecord("me", record(2, { other: ["p1"] }), [{ path: "p0", epoch: 1 }]);
  assertEquals([d.stop.size, d.adopt], [0, ["p0"]]);
});

Deno.test("reconcile: leases of the record's own epoch belong to a commander at work and are left alone", () => {
  const d = reconcileRecord("me", record(2, { other: ["p0"] }), [{ path: "p0", epoch: 2 }, {
    path: "p9",
    epoch: 2,
  }]);
  assertEquals([d.stop.size, d.adopt], [0, []]);
});

Deno.test("reconcile: a stopped record stops what was leased under it or before, not a later activation", () => {
  const d = reconcileRecord("me", record(2, {}, "stopped"), [{ path: "p0", epoch: 1 }, {
    path: "p1",
    epoch: 3,
  }]);
  assertEquals([...d.stop.keys()], ["p0"]);
});

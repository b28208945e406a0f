import { assertEquals } from "../tests/_assert.ts";
import type { TopologyRecord } from "./protocols.ts";
import { reconcileRecord, watchSuperseded } from "./reconcile.ts";
import { DesiredState } from "./desired_state.ts";
import { SlotTable } from "./slots.ts";
import { createLogger } from "./log.ts";
import type { EventBatcher } from "./event_batcher.ts";

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

Deno.test("reconcile: a duplicate whose stop is under way is stopped and reported once, however often the record changes", async () => {
  const desired = new DesiredState(undefined as never); // merge() needs no mesh
  const slots = new SlotTable(4);
  slots.grant("t", 1, ["p0", "p1"]);
  const events: Record<string, unknown>[] = [];
  const stops: string[][] = [];
  let finish!: () => void;
  const stopped = new Promise<void>((r) => finish = r);
  const off = watchSuperseded({
    me: "me",
    desired,
    slots,
    events: { add: (e: Record<string, unknown>) => events.push(e) } as unknown as EventBatcher,
    log: createLogger({ stderr: false }),
    stop: async (id, paths) => {
      stops.push(paths);
      await stopped;
      slots.release(id, paths);
    },
  });
  desired.merge({ ...record(3, { other: ["p0"], me: ["p1"] }), version: 1 });
  desired.merge({ ...record(4, { other: ["p0"], me: ["p1"] }), version: 2 }); // the stop is still under way
  assertEquals(stops, [["p0"]]);
  assertEquals(events.map((e) => e.path), ["p0"]);
  finish();
  await stopped;
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(slots.leased("t"), ["p1"]);
  desired.merge({ ...record(5, { other: ["p0"], me: ["p1"] }), version: 3 });
  assertEquals(stops.length, 1);
  off();
});

import { assertEquals } from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import type { TopologyRecord } from "../wire/mod.ts";
import { keepOf, reconcileRecord, type ReconcileRule, startReconciler } from "./reconcile.ts";
import type { Instance, TopologyRecord as Rec } from "../wire/mod.ts";
import { DesiredState } from "./desired_state.ts";
import { SlotTable } from "../leases/mod.ts";
import { createLogger } from "../log.ts";
import type { EventBatcher } from "../event_batcher.ts";

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
  const reconciler = startReconciler({
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
  await waitFor(() => slots.leased("t").length === 1, {
    timeout: 2_000,
    what: "the duplicate's slot to be freed",
  });
  assertEquals(slots.leased("t"), ["p1"]);
  desired.merge({ ...record(5, { other: ["p0"], me: ["p1"] }), version: 3 });
  assertEquals(stops.length, 1);
  reconciler.close();
});

const inst = (agent: string, epoch: number, startedAt: number, score: number): Instance => ({
  agent,
  epoch,
  startedAt,
  score,
});

Deno.test("reconcile: keepOf orders two instances by each rule, ties falling to the next criterion", () => {
  const original = inst("b", 1, 1_000, 0.1); // asker: leased first, running longest, on a fuller agent
  const replacement = inst("a", 2, 5_000, 0.9);
  assertEquals(keepOf("keep_replacement", original, replacement), "answerer");
  assertEquals(keepOf("keep_original", original, replacement), "asker");
  assertEquals(keepOf("longest_running", original, replacement), "asker");
  assertEquals(keepOf("best_score", original, replacement), "answerer");
  // The original restarted during the cut: its current run is the younger one.
  const restarted = { ...original, startedAt: 9_000 };
  assertEquals(keepOf("longest_running", restarted, replacement), "answerer");
  assertEquals(keepOf("keep_original", restarted, replacement), "asker");
  // Equal scores: the longest running stays.
  assertEquals(keepOf("best_score", { ...original, score: 0.9 }, replacement), "asker");
  // Identical: the lower agent ID, the same verdict whoever asks.
  assertEquals(keepOf("keep_original", inst("a", 1, 1, 1), inst("b", 1, 1, 1)), "asker");
  assertEquals(keepOf("keep_original", inst("b", 1, 1, 1), inst("a", 1, 1, 1)), "answerer");
});

/** Two agents' reconcilers whose records and questions reach each other directly. */
function pair(rule: ReconcileRule) {
  const agents = ["orig", "repl"].map((me) => {
    const slots = new SlotTable(2);
    const events: Record<string, unknown>[] = [];
    const stopped: string[] = [];
    return { me, slots, events, stopped, desired: undefined as unknown as DesiredState };
  });
  const [o, r] = agents as [typeof agents[0], typeof agents[0]];
  for (const a of agents) {
    const other = a === o ? r : o;
    a.desired = new DesiredState(
      { publish: (_: string, rec: Rec) => Promise.resolve(void other.desired.merge(rec)) } as never,
    );
  }
  o.slots.grant("t", 1, ["p0"]);
  r.slots.grant("t", 2, ["p0"]);
  const started = { orig: 1_000, repl: 5_000 } as Record<string, number>;
  const recs = new Map<string, ReturnType<typeof startReconciler>>();
  for (const a of agents) {
    recs.set(
      a.me,
      startReconciler({
        me: a.me,
        desired: a.desired,
        slots: a.slots,
        events: { add: (e: Record<string, unknown>) => a.events.push(e) } as unknown as EventBatcher,
        log: createLogger({ stderr: false }),
        stop: (id, paths) => {
          a.stopped.push(...paths);
          a.slots.release(id, paths);
          return Promise.resolve();
        },
        instance: (id, path) => {
          const epoch = a.slots.leaseEpoch(id, path);
          return epoch === undefined
            ? undefined
            : inst(a.me, epoch, started[a.me]!, a.me === "repl" ? 1 : 0.5);
        },
        ask: (agent, req) => recs.get(agent)!.answer(req),
        retryMs: 10,
      }),
    );
  }
  const rec: Rec = { ...record(2, { repl: ["p0"] }), reconcile: rule };
  return { o, r, recs, heal: () => (o.desired.merge(rec), r.desired.merge(rec)) };
}

async function settled(p: ReturnType<typeof pair>) {
  await waitFor(() => p.o.slots.leased("t").length + p.r.slots.leased("t").length === 1, {
    timeout: 2_000,
    interval: 5,
    what: "one instance left",
  }).finally(() => {
    for (const x of p.recs.values()) x.close();
  });
}

for (
  const [rule, kept] of [
    ["keep_original", "orig"],
    ["longest_running", "orig"],
    ["best_score", "repl"],
    ["keep_replacement", "repl"],
  ] as const
) {
  Deno.test(`reconcile: under ${rule} the heal leaves the ${kept === "orig" ? "original" : "replacement"} alone running, and the record says where`, async () => {
    const p = pair(rule);
    p.heal();
    await settled(p);
    const [keep, drop] = kept === "orig" ? [p.o, p.r] : [p.r, p.o];
    assertEquals([keep.slots.leased("t"), drop.slots.leased("t")], [["p0"], []]);
    assertEquals([keep.stopped, drop.stopped], [[], ["p0"]]);
    assertEquals(drop.events.map((e) => [e.type, e.keptOn, e.rule]), [[
      "task:duplicate-stopped",
      keep.me,
      rule,
    ]]);
    for (const a of [p.o, p.r]) assertEquals(a.desired.get("t")!.placement, { [keep.me]: ["p0"] });
  });
}

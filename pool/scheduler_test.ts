import { assertEquals } from "../tests/_assert.ts";
import { FakeClock } from "../tests/_fake_clock.ts";
import type { QueueEntry } from "./protocols.ts";
import { decide, type DecideInput, queueOrder } from "./scheduler.ts";

function entry(id: string, over: Partial<QueueEntry> = {}): QueueEntry {
  return {
    id,
    name: id,
    priority: 0,
    share: id,
    state: "queued",
    version: 1,
    tasks: 2,
    source: "",
    file: `${id}.xml`,
    vars: {},
    queuedAt: 1_000,
    queuedBy: "cli",
    updatedAt: 1_000,
    ...over,
  };
}

function input(clock: FakeClock, free: number, over: Partial<DecideInput> = {}): DecideInput {
  return {
    now: clock.now(),
    fits: (e) => e.tasks <= free,
    everFits: (e) => e.tasks <= 10,
    alive: () => true,
    orphanGraceMs: 20_000,
    retryAfterMs: 2_000,
    ...over,
  };
}

Deno.test("pool scheduler: a higher priority starts first, even when queued later", () => {
  const clock = new FakeClock();
  const low = entry("low", { queuedAt: 1 });
  const high = entry("high", { queuedAt: 2, priority: 5 });
  assertEquals(decide([low, high], input(clock, 4)).start?.id, "high");
  assertEquals(queueOrder([low, high]).map((e) => e.id), ["high", "low"]);
});

Deno.test("pool scheduler: nothing overtakes a head that does not fit yet (all or nothing, no starvation)", () => {
  const clock = new FakeClock();
  const big = entry("big", { tasks: 8, priority: 1 });
  const small = entry("small", { tasks: 1 });
  const d = decide([big, small], input(clock, 4));
  assertEquals(d.start, undefined);
  assertEquals(d.order.map((o) => o.waiting), ["needs 8 free slot(s)", 'behind "big"']);
  assertEquals(decide([big, small], input(clock, 8)).start?.id, "big");
});

Deno.test("pool scheduler: a topology larger than the whole pool is passed over, not waited for", () => {
  const clock = new FakeClock();
  const huge = entry("huge", { tasks: 50, priority: 9 });
  const ok = entry("ok", { tasks: 2 });
  const d = decide([huge, ok], input(clock, 4));
  assertEquals(d.start?.id, "ok");
  assertEquals(d.order[0]!.waiting.startsWith("larger than the whole pool"), true);
});

Deno.test("pool scheduler: equal priorities take turns by share group, FIFO within a group", () => {
  // alice queued three first, then bob two: round-robin serves alice, bob, alice, bob, alice.
  const q = [
    entry("a1", { share: "alice", queuedAt: 1 }),
    entry("a2", { share: "alice", queuedAt: 2 }),
    entry("a3", { share: "alice", queuedAt: 3 }),
    entry("b1", { share: "bob", queuedAt: 4 }),
    entry("b2", { share: "bob", queuedAt: 5 }),
  ];
  assertEquals(queueOrder(q).map((e) => e.id), ["a1", "b1", "a2", "b2", "a3"]);
  // Once alice was served (a1 running), bob's turn comes first.
  const served = [{ ...q[0]!, state: "running" as const, startedAt: 10 }, ...q.slice(1)];
  assertEquals(queueOrder(served).map((e) => e.id), ["b1", "a2", "b2", "a3"]);
});

Deno.test("pool scheduler: one start at a time", () => {
  const clock = new FakeClock();
  const d = decide([entry("s", { state: "starting", startedBy: "me" }), entry("q")], input(clock, 8));
  assertEquals(d.start, undefined);
  assertEquals(d.order[0]!.waiting, "another topology is starting");
});

Deno.test("pool scheduler: a failed start is retried after the back-off, by the fake clock", () => {
  const clock = new FakeClock();
  const failed = entry("f", { failedAt: clock.now(), reason: "slots taken meanwhile" });
  assertEquals(decide([failed], input(clock, 8)).start, undefined);
  clock.tick(1_999);
  assertEquals(decide([failed], input(clock, 8)).start, undefined);
  clock.tick(1);
  assertEquals(decide([failed], input(clock, 8)).start?.id, "f");
});

Deno.test("pool scheduler: an entry a dead scheduler left starting is queued again after the orphan grace", () => {
  const clock = new FakeClock();
  const stuck = entry("s", { state: "starting", startedBy: "gone", updatedAt: clock.now() });
  const alive = (p: string) => p !== "gone";
  let d = decide([stuck], input(clock, 8, { alive }));
  assertEquals(d.requeue, []);
  clock.tick(20_000);
  d = decide([stuck], input(clock, 8, { alive, now: clock.now() }));
  assertEquals(d.requeue.map((e) => e.id), ["s"]);
  // Its own scheduler alive: never taken from it.
  assertEquals(decide([stuck], input(clock, 8)).requeue, []);
});

Deno.test("pool scheduler: done and cancelled entries are not scheduled", () => {
  const clock = new FakeClock();
  const d = decide([entry("d", { state: "done" }), entry("c", { state: "cancelled" })], input(clock, 8));
  assertEquals([d.start, d.order.length], [undefined, 0]);
});

import { assert, assertEquals } from "../tests/_assert.ts";
import { type CoalesceClock, Coalescer } from "./coalesce.ts";

/** Time that moves only when the test says, firing due timeouts in order. */
class FakeTimeouts implements CoalesceClock {
  #now = 0;
  #next = 1;
  readonly timers = new Map<number, { fn: () => void; due: number }>();
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.timers.set(id, { fn, due: this.#now + ms });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves on by `ms`, running what falls due, then lets the published promises settle. */
  async tick(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      const next = [...this.timers.entries()].sort((a, b) => a[1].due - b[1].due)[0];
      if (!next || next[1].due > end) break;
      this.timers.delete(next[0]);
      this.#now = next[1].due;
      next[1].fn();
      await Promise.resolve();
    }
    this.#now = end;
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

function rig(over: { mode?: "leading" | "trailing"; maxBytes?: number; fail?: boolean } = {}) {
  const clock = new FakeTimeouts();
  const sent: { at: number; items: string[] }[] = [];
  const lost: string[][] = [];
  const c = new Coalescer<string>({
    publish: (items) => {
      if (over.fail) return Promise.reject(new Error("node stopped"));
      sent.push({ at: clock.now(), items });
      return Promise.resolve();
    },
    onError: (_err, items) => lost.push(items),
    windowMs: 50,
    ...(over.mode ? { mode: over.mode } : {}),
    ...(over.maxBytes ? { maxBytes: over.maxBytes, sizeOf: (s: string) => s.length } : {}),
    clock,
  });
  return { clock, sent, lost, c };
}

Deno.test("coalesce: items within the window share one message, sent when the window closes", async () => {
  const { clock, sent, c } = rig();
  c.add("a");
  await clock.tick(10);
  c.add("b");
  c.add("c");
  await clock.tick(39);
  assertEquals(sent, [], "nothing before the window closes");
  await clock.tick(1);
  assertEquals(sent, [{ at: 50, items: ["a", "b", "c"] }]);
  assertEquals(clock.timers.size, 0, "no timer while nothing is queued");
  c.add("d");
  await clock.tick(50);
  assertEquals(sent.at(-1), { at: 100, items: ["d"] });
});

Deno.test("coalesce: leading mode sends a lone item at once and holds the next ones a window", async () => {
  const { clock, sent, c } = rig({ mode: "leading" });
  c.add("a");
  await clock.tick(0);
  assertEquals(sent, [{ at: 0, items: ["a"] }], "a write after a quiet spell is not delayed");
  await clock.tick(20);
  c.add("b");
  c.add("c");
  await clock.tick(29);
  assertEquals(sent.length, 1);
  await clock.tick(1);
  assertEquals(sent[1], { at: 50, items: ["b", "c"] }, "50 ms after the last message");
});

Deno.test("coalesce: messages are split at maxBytes, in order", async () => {
  const { clock, sent, c } = rig({ maxBytes: 10 });
  for (const s of ["aaaa", "bbbb", "cccc", "dd", "eeeeeeeeeeee"]) c.add(s);
  await clock.tick(50);
  assertEquals(sent.map((m) => m.items), [["aaaa", "bbbb"], ["cccc", "dd"], ["eeeeeeeeeeee"]]);
});

Deno.test("coalesce: a failed publish is handed to onError with what it lost, never thrown", async () => {
  const { clock, lost, c } = rig({ fail: true });
  c.add("a");
  c.add("b");
  await clock.tick(50);
  assertEquals(lost, [["a", "b"]]);
  await c.flush(); // resolves, with nothing queued
});

Deno.test("coalesce: stop publishes what is queued, owns no timer after, and sends later items at once", async () => {
  const { clock, sent, c } = rig();
  c.add("a");
  await c.stop();
  assertEquals(sent.map((m) => m.items), [["a"]]);
  assertEquals(clock.timers.size, 0);
  c.add("late");
  await clock.tick(0);
  assertEquals(sent.map((m) => m.items), [["a"], ["late"]]);
  assertEquals(clock.timers.size, 0);
  assert(c.pending === 0);
});

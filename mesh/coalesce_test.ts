import { assert, assertEquals } from "../tests/_assert.ts";
import { FakeClock } from "../tests/_fake_clock.ts";
import { Coalescer } from "./coalesce.ts";

function rig(over: { mode?: "leading" | "trailing"; maxBytes?: number; fail?: boolean } = {}) {
  const clock = new FakeClock(0);
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
  await clock.tickAsync(10);
  c.add("b");
  c.add("c");
  await clock.tickAsync(39);
  assertEquals(sent, [], "nothing before the window closes");
  await clock.tickAsync(1);
  assertEquals(sent, [{ at: 50, items: ["a", "b", "c"] }]);
  assertEquals(clock.timers.size, 0, "no timer while nothing is queued");
  c.add("d");
  await clock.tickAsync(50);
  assertEquals(sent.at(-1), { at: 100, items: ["d"] });
});

Deno.test("coalesce: leading mode sends a lone item at once and holds the next ones a window", async () => {
  const { clock, sent, c } = rig({ mode: "leading" });
  c.add("a");
  await clock.tickAsync(0);
  assertEquals(sent, [{ at: 0, items: ["a"] }], "a write after a quiet spell is not delayed");
  await clock.tickAsync(20);
  c.add("b");
  c.add("c");
  await clock.tickAsync(29);
  assertEquals(sent.length, 1);
  await clock.tickAsync(1);
  assertEquals(sent[1], { at: 50, items: ["b", "c"] }, "50 ms after the last message");
});

Deno.test("coalesce: messages are split at maxBytes, in order", async () => {
  const { clock, sent, c } = rig({ maxBytes: 10 });
  for (const s of ["aaaa", "bbbb", "cccc", "dd", "eeeeeeeeeeee"]) c.add(s);
  await clock.tickAsync(50);
  assertEquals(sent.map((m) => m.items), [["aaaa", "bbbb"], ["cccc", "dd"], ["eeeeeeeeeeee"]]);
});

Deno.test("coalesce: a failed publish is handed to onError with what it lost, never thrown", async () => {
  const { clock, lost, c } = rig({ fail: true });
  c.add("a");
  c.add("b");
  await clock.tickAsync(50);
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
  await clock.tickAsync(0);
  assertEquals(sent.map((m) => m.items), [["a"], ["late"]]);
  assertEquals(clock.timers.size, 0);
  assert(c.pending === 0);
});

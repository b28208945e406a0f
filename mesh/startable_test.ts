import { assertEquals, assertRejects, assertThrows } from "../tests/_assert.ts";
import { service, type Startable, startable, startAll, stopAll, StopError } from "./startable.ts";

function fake(name: string, log: string[], fail: { start?: boolean; stop?: boolean } = {}): Startable {
  return {
    name,
    start() {
      log.push(`start ${name}`);
      if (fail.start) throw new Error(`${name} cannot start`);
    },
    afterStart() {
      log.push(`after ${name}`);
    },
    beforeStop() {
      log.push(`before ${name}`);
    },
    async stop() {
      await Promise.resolve();
      log.push(`stop ${name}`);
      if (fail.stop) throw new Error(`${name} cannot stop`);
    },
  };
}

Deno.test("startAll: starts in order, then afterStart in order; stopAll reverses both steps", async () => {
  const log: string[] = [];
  const parts = ["a", "b", "c"].map((n) => fake(n, log));
  await startAll(parts);
  await stopAll(parts);
  assertEquals(log, [
    "start a",
    "start b",
    "start c",
    "after a",
    "after b",
    "after c",
    "before c",
    "before b",
    "before a",
    "stop c",
    "stop b",
    "stop a",
  ]);
});

Deno.test("startAll: a part that fails to start stops the ones started before it, and the error is thrown", async () => {
  const log: string[] = [];
  const parts = [fake("a", log), fake("b", log), fake("c", log, { start: true }), fake("d", log)];
  const err = await assertRejects(() => startAll(parts), Error);
  assertEquals(err.message, "c cannot start");
  assertEquals(log, [
    "start a",
    "start b",
    "start c",
    "before c",
    "before b",
    "before a",
    "stop c",
    "stop b",
    "stop a",
  ]);
});

Deno.test("startAll: an aborted signal starts nothing more and stops what started", async () => {
  const log: string[] = [];
  const ctl = new AbortController();
  const a = fake("a", log);
  const stopper: Startable = {
    name: "stopper",
    start: () => ctl.abort(new Error("shutting down")),
    stop() {},
  };
  const err = await assertRejects(() => startAll([a, stopper, fake("b", log)], ctl.signal), Error);
  assertEquals(err.message, "shutting down");
  assertEquals(log, ["start a", "before a", "stop a"]);
});

Deno.test("stopAll: every part's stop runs even if some throw; the failures come back together, by name", async () => {
  const log: string[] = [];
  const reported: string[] = [];
  const parts = [fake("a", log), fake("b", log, { stop: true }), fake("c", log, { stop: true })];
  const err = await assertRejects(() => stopAll(parts, { onStopError: (p) => reported.push(p) }), StopError);
  assertEquals(err.parts, ["c", "b"]);
  assertEquals(err.errors.map((e) => (e as Error).message), ["c cannot stop", "b cannot stop"]);
  assertEquals(reported, ["c", "b"]);
  assertEquals(log.filter((l) => l.startsWith("stop")), ["stop c", "stop b", "stop a"]);
});

Deno.test("startable: stop is idempotent and [Symbol.asyncDispose] stops", async () => {
  let stops = 0;
  const part = startable({
    name: "p",
    start() {},
    async stop() {
      await Promise.resolve();
      stops++;
    },
  });
  await part.start();
  await Promise.all([part.stop(), part.stop()]);
  {
    await using _p = part;
  }
  assertEquals(stops, 1);
});

Deno.test("service: opens on start, closes once on stop, and get() before start throws", async () => {
  const log: string[] = [];
  const s = service("store", () => {
    log.push("open");
    return { n: 1 };
  }, () => log.push("close"));
  assertThrows(() => s.get(), Error);
  await s.stop(); // never started: nothing to close
  const t = service("other", () => ({ n: 2 }), () => log.push("close other"));
  await startAll([t]);
  assertEquals(t.get().n, 2);
  await t.stop();
  await t.stop();
  assertEquals(log, ["close other"]);
});

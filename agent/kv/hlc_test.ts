import { assert, assertEquals, assertThrows } from "../../tests/_assert.ts";
import { formatVersion, HybridClock, parseVersion } from "./hlc.ts";

Deno.test("hlc: versions grow even when the wall clock stands still or goes back", () => {
  let now = 1_000;
  const clock = new HybridClock(() => now);
  const a = clock.tick();
  const b = clock.tick();
  now = 900;
  const c = clock.tick();
  assert(a < b && b < c, `${a} < ${b} < ${c}`);
  now = 2_000;
  assertEquals(clock.tick(), formatVersion({ wall: 2_000, counter: 0 }));
});

Deno.test("hlc: observing a later version moves the clock past it", () => {
  const clock = new HybridClock(() => 5);
  const remote = formatVersion({ wall: 50, counter: 7 });
  clock.observe(remote);
  assert(clock.tick() > remote);
  assertEquals(parseVersion(remote), { wall: 50, counter: 7 });
  assertThrows(() => parseVersion("12"), RangeError);
});

import { assertEquals } from "../tests/_assert.ts";
import { FakeClock } from "../tests/_fake_clock.ts";
import { IdleWatch } from "./idle.ts";

Deno.test("pool idle: an agent leaves once idle past the timeout, counted from its last lease", () => {
  const clock = new FakeClock();
  let busy = true;
  let idled: number | undefined;
  using w = new IdleWatch({ clock, timeoutMs: 60_000, busy: () => busy, onIdle: (ms) => (idled = ms) });
  clock.tick(120_000);
  assertEquals(idled, undefined, "busy agents never idle out");
  busy = false;
  clock.tick(50_000);
  assertEquals(idled, undefined);
  w.touch(); // a lease came and went between two checks
  clock.tick(50_000);
  assertEquals(idled, undefined);
  clock.tick(15_000); // checked every tenth of the timeout
  assertEquals(idled !== undefined && idled >= 60_000, true);
});

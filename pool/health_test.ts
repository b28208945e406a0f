import { assertEquals, assertThrows } from "../tests/_assert.ts";
import { FakeClock } from "../tests/_fake_clock.ts";
import {
  formatBytes,
  healthFromLabels,
  healthLabels,
  HealthMonitor,
  MAX_LOAD_LABEL,
  MIN_FREE_DISK_LABEL,
  parseBytes,
} from "./health.ts";

Deno.test("pool health: a disk under the floor refuses leases with the reason, and recovers", () => {
  const clock = new FakeClock();
  let free = 2e9;
  const changes: (string | undefined)[] = [];
  using h = new HealthMonitor({ freeBytes: () => free, load: () => 0 }, {
    clock,
    minFreeDiskBytes: 500e6,
    intervalMs: 5_000,
    onChange: (r) => changes.push(r),
  });
  assertEquals(h.reason, undefined);
  free = 100e6;
  clock.tick(5_000);
  assertEquals(h.reason, "data disk has 100 MB free, under --min-free-disk 500 MB");
  free = 90e6;
  clock.tick(5_000);
  assertEquals(changes.length, 1, "a moving free count under the floor is one change, not one per check");
  free = 1e9;
  clock.tick(5_000);
  assertEquals([h.reason, changes.length], [undefined, 2]);
});

Deno.test("pool health: load must stay above the ceiling for several checks", () => {
  const clock = new FakeClock();
  let load = 9;
  using h = new HealthMonitor({ freeBytes: () => 1e12, load: () => load }, {
    clock,
    maxLoad: 4,
    loadChecks: 3,
    intervalMs: 1_000,
  });
  clock.tick(1_000);
  assertEquals(h.reason, undefined);
  clock.tick(1_000);
  assertEquals(h.reason, "load 9.00 has stayed above --max-load 4");
  load = 1;
  clock.tick(1_000);
  assertEquals(h.reason, undefined);
});

Deno.test("pool health: sizes parse and print as people write them", () => {
  assertEquals(parseBytes("500MB"), 500_000_000);
  assertEquals(parseBytes("2GiB"), 2 * 1024 ** 3);
  assertEquals(parseBytes("1024"), 1024);
  assertEquals(formatBytes(512_000_000), "512 MB");
  assertThrows(() => parseBytes("lots"), RangeError);
});

Deno.test("pool health: a free space that cannot be read is said once and refuses nothing", () => {
  const clock = new FakeClock();
  const said: string[] = [];
  using h = new HealthMonitor({
    freeBytes: () => {
      throw new Error("ENOSYS");
    },
    load: () => 0,
  }, { clock, intervalMs: 1_000, onUnreadable: (w) => said.push(w) });
  clock.tick(3_000);
  assertEquals([h.reason, said], [undefined, ["ENOSYS"]]);
});

Deno.test("pool health: settings travel as labels to agents a plug-in starts; bad ones are named", () => {
  const labels = healthLabels({ minFreeDiskBytes: 2_000_000_000, maxLoad: 7.5 });
  assertEquals(labels, { [MIN_FREE_DISK_LABEL]: "2000000000", [MAX_LOAD_LABEL]: "7.5" });
  assertEquals(healthFromLabels(labels), {
    options: { minFreeDiskBytes: 2_000_000_000, maxLoad: 7.5 },
    bad: [],
  });
  assertEquals(healthLabels({}), {});
  assertEquals(healthFromLabels(undefined), { options: {}, bad: [] });
  assertEquals(healthFromLabels({ [MIN_FREE_DISK_LABEL]: "0" }).options, { minFreeDiskBytes: 0 });
  assertEquals(healthFromLabels({ [MIN_FREE_DISK_LABEL]: "2GB", [MAX_LOAD_LABEL]: "" }), {
    options: {},
    bad: [`${MIN_FREE_DISK_LABEL}=2GB`, `${MAX_LOAD_LABEL}=`],
  });
});

import { assertEquals } from "../tests/_assert.ts";
import { taskDelta } from "./task_delta.ts";
import type { EnvTask } from "./types.ts";

const t = (mode: EnvTask["mode"], state: EnvTask["state"], reason?: string): EnvTask => ({
  mode,
  state,
  critical: true,
  ...(reason ? { reason } : {}),
});

/** What the arbiter does with a delta. */
function apply(before: Record<string, EnvTask>, d: ReturnType<typeof taskDelta>): Record<string, EnvTask> {
  const out = { ...before };
  if (d.bulk) {
    for (const [p, x] of Object.entries(out)) {
      if (!d.bulk.modes.includes(x.mode)) continue;
      const { reason: _, ...rest } = x;
      out[p] = { ...rest, state: d.bulk.state };
    }
  }
  return { ...out, ...d.changed };
}

Deno.test("task delta: 1,000 tasks reaching one state are a bulk plus the one that failed", () => {
  const before: Record<string, EnvTask> = { none: t("none", "INVARIANT"), basic: t("basic", "STANDBY") };
  for (let i = 0; i < 1000; i++) before[`d${i}`] = t("direct", "STANDBY", i === 7 ? "old" : undefined);
  const after = { ...before };
  for (let i = 0; i < 1000; i++) after[`d${i}`] = t("direct", "CONFIGURED");
  after.d3 = t("direct", "ERROR", "no calibration");
  const d = taskDelta(before, after);
  assertEquals(d.bulk, { modes: ["direct"], state: "CONFIGURED" });
  assertEquals(d.changed, { d3: after.d3 });
  assertEquals(apply(before, d), after);
});

Deno.test("task delta: a few changes travel as they are", () => {
  const before = { a: t("direct", "RUNNING"), b: t("direct", "RUNNING") };
  const after = { ...before, b: t("direct", "ERROR", "crashed") };
  const d = taskDelta(before, after);
  assertEquals(d, { changed: { b: after.b } });
  assertEquals(apply(before, d), after);
});

import { assertEquals } from "../tests/_assert.ts";
import { expandTaskStates, taskStateEvents } from "./task_events.ts";
import type { EnvTask } from "./types.ts";

const task = (state: EnvTask["state"], reason?: string): EnvTask => ({
  state,
  mode: "direct",
  critical: true,
  ...(reason ? { reason } : {}),
});

Deno.test("task events: a transition of many tasks is one event per state and reason, not one per task", () => {
  const before: Record<string, EnvTask> = {};
  const after: Record<string, EnvTask> = {};
  for (let i = 0; i < 1000; i++) {
    before[`main/t_${i}`] = task("STANDBY");
    after[`main/t_${i}`] = task("CONFIGURED");
  }
  after["main/t_7"] = task("ERROR", "bad config");
  after["main/t_8"] = task("STANDBY");
  const events = taskStateEvents("readout", before, after, 5);
  assertEquals(events.length, 2);
  assertEquals(events[0]!.paths?.length, 998);
  assertEquals(events[0]!.state, "CONFIGURED");
  assertEquals(events[1], {
    type: "task:state",
    at: 5,
    envId: "readout",
    path: "main/t_7",
    state: "ERROR",
    reason: "bad config",
  });
  const each = events.flatMap((e) => expandTaskStates({ ...e }));
  assertEquals(each.length, 999);
  assertEquals(
    each.filter((e) => e.state === "CONFIGURED").map((e) => e.path).sort(),
    [
      ...Object.keys(after).filter((p) => after[p]!.state === "CONFIGURED"),
    ].sort(),
  );
  assertEquals(each.every((e) => typeof e.path === "string" && !("paths" in e)), true);
});

Deno.test("task events: unchanged tasks give no event, other events pass through expandTaskStates", () => {
  const tasks = { "main/a": task("RUNNING") };
  assertEquals(taskStateEvents("e", tasks, { ...tasks }, 1), []);
  const other = { type: "env:state", envId: "e", state: "RUNNING" };
  assertEquals(expandTaskStates(other), [other]);
});

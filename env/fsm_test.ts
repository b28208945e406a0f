import { assertEquals, assertThrows } from "../tests/_assert.ts";
import { aggregateTaskStates, allowedEvents, nextState } from "./fsm.ts";
import { parseTrigger, planTransition } from "./hooks.ts";

Deno.test("env fsm: AliECS's table, and nothing leaves DONE", () => {
  assertEquals(nextState("STANDBY", "DEPLOY"), "DEPLOYED");
  assertEquals(nextState("DEPLOYED", "CONFIGURE"), "CONFIGURED");
  assertEquals(nextState("CONFIGURED", "RESET"), "DEPLOYED");
  assertEquals(nextState("CONFIGURED", "START_ACTIVITY"), "RUNNING");
  assertEquals(nextState("RUNNING", "STOP_ACTIVITY"), "CONFIGURED");
  assertEquals(nextState("RUNNING", "EXIT"), undefined);
  assertEquals(nextState("ERROR", "RECOVER"), "DEPLOYED");
  assertEquals(nextState("ERROR", "GO_ERROR"), undefined);
  assertEquals(nextState("DEPLOYED", "START_ACTIVITY"), undefined);
  assertEquals(allowedEvents("DEPLOYED"), ["CONFIGURE", "EXIT", "GO_ERROR"]);
  assertEquals(allowedEvents("RUNNING"), ["STOP_ACTIVITY", "GO_ERROR"]);
  assertEquals(allowedEvents("DONE"), []);
});

Deno.test("env fsm: task states add up — equal, any ERROR, INVARIANT neutral, else MIXED", () => {
  assertEquals(aggregateTaskStates(["RUNNING", "RUNNING", "INVARIANT"]), "RUNNING");
  assertEquals(aggregateTaskStates(["RUNNING", "CONFIGURED"]), "MIXED");
  assertEquals(aggregateTaskStates(["RUNNING", "CONFIGURED", "ERROR"]), "ERROR");
  assertEquals(aggregateTaskStates(["INVARIANT"]), "INVARIANT");
  assertEquals(aggregateTaskStates([]), "INVARIANT");
});

Deno.test("env hooks: before, leave, tasks, enter, after — each by weight", () => {
  const hooks = [
    { trigger: "after_CONFIGURE", n: "a" },
    { trigger: "before_CONFIGURE+5", n: "b5" },
    { trigger: "enter_CONFIGURED", n: "e" },
    { trigger: "before_CONFIGURE-10", n: "b-10" },
    { trigger: "leave_DEPLOYED", n: "l" },
    { trigger: "before_CONFIGURE", n: "b0" },
    { trigger: "before_CONFIGURE", n: "b0bis" },
    { trigger: "before_START_ACTIVITY", n: "other" },
  ];
  const steps = planTransition(hooks, "CONFIGURE", "DEPLOYED", "CONFIGURED").map((s) =>
    s.kind === "tasks" ? "tasks" : s.hooks.map((h) => h.n).join("+")
  );
  assertEquals(steps, ["b-10", "b0+b0bis", "b5", "l", "tasks", "e", "a"]);
  assertEquals(planTransition([], "RESET", "CONFIGURED", "DEPLOYED"), [{ kind: "tasks" }]);
  assertEquals(parseTrigger("enter_RUNNING+3"), { moment: "enter_RUNNING", weight: 3 });
  assertThrows(() => parseTrigger("before_CONFIGURED"), RangeError);
  assertThrows(() => parseTrigger("during_CONFIGURE"), RangeError);
});

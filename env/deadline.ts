/**
 * How long a controller may hold an environment for one event before the arbiter calls it lost: the
 * tasks' timeout, each group of hooks its longest hook and the round trips of starting and dropping it,
 * and 10 s. Worked out from the control rules alone, so the arbiter can set it when it grants the claim
 * (a rule matching no task only makes it longer).
 *
 * @module
 */
import { DEFAULT_HOOK_TIMEOUT_MS, timeoutFor } from "./file.ts";
import { type PlanStep, planTransition } from "./hooks.ts";
import type { ControlRule, EnvControl, EnvEvent, EnvState } from "./types.ts";

/** Each group of hooks: its longest hook, and the round trips of starting and dropping them. */
export function hookBudgetOf(plan: readonly PlanStep<{ rule: ControlRule }>[]): number {
  return plan.reduce(
    (sum, s) =>
      s.kind === "hooks"
        ? sum + 10_000 + Math.max(...s.hooks.map((h) => h.rule.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS))
        : sum,
    0,
  );
}

/** The claim's deadline for `event` from `from` to `to`, started at `startedAt`. */
export function transitionDeadline(
  control: EnvControl,
  event: EnvEvent,
  from: EnvState,
  to: EnvState,
  startedAt: number,
): number {
  const hooks = control.rules.filter((r) => r.mode === "hook" && r.trigger).map((rule) => ({
    trigger: rule.trigger!,
    rule,
  }));
  const plan = planTransition(hooks, event, from, to);
  // Basic tasks starting get a little more.
  return startedAt + timeoutFor(control, event) + hookBudgetOf(plan) + 10_000;
}

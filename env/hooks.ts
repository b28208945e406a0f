/**
 * When hooks run, as AliECS orders its callables: for an event E from state S to T, `before_E`, then
 * `leave_S`, then the tasks' transition, then `enter_T`, then `after_E`. Each moment is refined by an
 * integer weight written after it (`before_CONFIGURE-10` runs before `before_CONFIGURE`, which is weight 0,
 * which runs before `before_CONFIGURE+5`); hooks of equal moment and weight run together.
 *
 * @module
 */
import { ENV_EVENTS } from "./fsm.ts";
import type { EnvEvent, EnvState } from "./types.ts";

const STATES: readonly EnvState[] = ["STANDBY", "DEPLOYED", "CONFIGURED", "RUNNING", "ERROR", "DONE"];

/** A parsed trigger: the moment and its weight. */
export interface Trigger {
  /** `before_CONFIGURE`, `leave_DEPLOYED`, … */
  moment: string;
  weight: number;
}

/** Parses `before_EVENT`, `leave_STATE`, `enter_STATE` or `after_EVENT`, optionally `+N`/`-N`. */
export function parseTrigger(text: string): Trigger {
  const m = /^(before|after|leave|enter)_([A-Z_]+?)([+-]\d+)?$/.exec(text.trim());
  const what = m?.[2] ?? "";
  const ok = m &&
    ((m[1] === "before" || m[1] === "after")
      ? (ENV_EVENTS as readonly string[]).includes(what)
      : (STATES as readonly string[]).includes(what));
  if (!m || !ok) {
    throw new RangeError(
      `Trigger "${text}" is not before_EVENT, after_EVENT, leave_STATE or enter_STATE with an optional ` +
        `+N/-N weight (e.g. "before_CONFIGURE-10", "enter_RUNNING")`,
    );
  }
  return { moment: `${m[1]}_${what}`, weight: m[3] ? Number(m[3]) : 0 };
}

/** The four moments of a transition, in the order they happen (the tasks' transition after the second). */
export function momentsOf(event: EnvEvent, from: EnvState, to: EnvState): [string, string, string, string] {
  return [`before_${event}`, `leave_${from}`, `enter_${to}`, `after_${event}`];
}

/** One step of a transition's plan: hooks that run together, or the tasks' own transition. */
export type PlanStep<H> =
  | { kind: "hooks"; moment: string; weight: number; hooks: H[] }
  | { kind: "tasks" };

/** The ordered steps of `event` from `from` to `to`, given hooks and their triggers. */
export function planTransition<H extends { trigger: string }>(
  hooks: readonly H[],
  event: EnvEvent,
  from: EnvState,
  to: EnvState,
): PlanStep<H>[] {
  const moments = momentsOf(event, from, to);
  const groups = new Map<string, { moment: string; weight: number; rank: number; hooks: H[] }>();
  for (const h of hooks) {
    const t = parseTrigger(h.trigger);
    const rank = moments.indexOf(t.moment);
    if (rank < 0) continue;
    const key = `${t.moment}\0${t.weight}`;
    const g = groups.get(key) ?? { moment: t.moment, weight: t.weight, rank, hooks: [] };
    g.hooks.push(h);
    groups.set(key, g);
  }
  const sorted = [...groups.values()].sort((a, b) => a.rank - b.rank || a.weight - b.weight);
  const steps: PlanStep<H>[] = [];
  let tasksDone = false;
  for (const g of sorted) {
    if (!tasksDone && g.rank >= 2) {
      steps.push({ kind: "tasks" });
      tasksDone = true;
    }
    steps.push({ kind: "hooks", moment: g.moment, weight: g.weight, hooks: g.hooks });
  }
  if (!tasksDone) steps.push({ kind: "tasks" });
  return steps;
}

/**
 * What a transition changed in an environment's tasks, as the controller writes it to the arbiter: not
 * 1,000 tasks' states but, most often, "every task of these modes reached this state" and the few that
 * differ.
 *
 * @module
 */
import type { EnvTask } from "./types.ts";

function sameTask(a: EnvTask | undefined, b: EnvTask): boolean {
  return a !== undefined && a.state === b.state && a.reason === b.reason && a.mode === b.mode &&
    a.critical === b.critical;
}

/**
 * What a transition changed in the tasks, compactly: most often every task of some modes reached one
 * state, which `bulk` says in a few bytes; `changed` holds the tasks that differ from that.
 */
export function taskDelta(
  before: Record<string, EnvTask>,
  after: Record<string, EnvTask>,
): { bulk?: { modes: EnvTask["mode"][]; state: EnvTask["state"] }; changed: Record<string, EnvTask> } {
  const changed: Record<string, EnvTask> = {};
  const votes = new Map<EnvTask["state"], number>();
  for (const [p, t] of Object.entries(after)) {
    if (before[p] === t) continue;
    changed[p] = t;
    if (t.reason === undefined) votes.set(t.state, (votes.get(t.state) ?? 0) + 1);
  }
  const state = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (state === undefined || votes.get(state)! < 8) return { changed };
  const modes = [
    ...new Set(
      Object.entries(changed).filter(([, t]) => t.state === state && t.reason === undefined).map(([, t]) =>
        t.mode
      ),
    ),
  ];
  const rest: Record<string, EnvTask> = {};
  for (const [p, t] of Object.entries(after)) {
    const b = before[p];
    const bulked = b && modes.includes(b.mode) ? { mode: b.mode, critical: b.critical, state } : b;
    if (!sameTask(bulked, t)) rest[p] = t;
  }
  return { bulk: { modes, state }, changed: rest };
}

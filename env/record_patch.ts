/**
 * The outcome of a transition, written to the arbiter as a patch — only what changed: the state, the tasks
 * whose state changed (most often one `bulk` line), the history entry — within the epoch the controller
 * holds, which lets the controller go.
 *
 * @module
 */
import { EnvConflictError } from "./errors.ts";
import { envRequest } from "./arbiter_client.ts";
import { taskDelta } from "./task_delta.ts";
import type { EnvControllerInit } from "./control_types.ts";
import type { EnvEvent, EnvRecord, EnvTask, EnvTransition } from "./types.ts";

/** How a transition ended. */
export interface Outcome {
  event: EnvEvent;
  to: EnvRecord["state"];
  startedAt: number;
  /** The event did what was asked (a GO_ERROR that reached ERROR is ok, with its reason). */
  ok: boolean;
  /** Why it failed, or why the environment is where it is (kept on the record and the history entry). */
  reason?: string;
  tasks: Record<string, EnvTask>;
  destroyed?: boolean;
}

/** The history entry of `outcome`, applied to `rec` by `init.by`. */
export function historyEntry(init: EnvControllerInit, rec: EnvRecord, outcome: Outcome): EnvTransition {
  const { event } = outcome;
  return {
    event,
    from: rec.state,
    to: outcome.to,
    ok: outcome.ok,
    by: init.by,
    startedAt: outcome.startedAt,
    ms: Date.now() - outcome.startedAt,
    ...(outcome.reason ? { reason: outcome.reason } : {}),
    ...(rec.runNumber !== null && (event === "START_ACTIVITY" || event === "STOP_ACTIVITY")
      ? { runNumber: rec.runNumber }
      : {}),
  };
}

/** Writes `outcome` to the arbiter; returns `rec` as the arbiter now holds it (the controller let go). */
export async function writeOutcome(
  init: EnvControllerInit,
  arbiter: string,
  rec: EnvRecord,
  outcome: Outcome,
): Promise<EnvRecord> {
  const entry = historyEntry(init, rec, outcome);
  // Only what changed travels; the arbiter applies it to its record and says the version it made.
  const { bulk, changed } = taskDelta(rec.tasks, outcome.tasks);
  const res = await envRequest(init, arbiter, {
    op: "patch",
    id: rec.id,
    epoch: rec.epoch,
    state: outcome.to,
    ...(bulk ? { bulk } : {}),
    tasks: changed,
    entry,
    reason: outcome.reason ?? null,
    ...(outcome.destroyed ? { destroyed: true } : {}),
  });
  if (!res.ok || !res.head) throw new EnvConflictError(res.reason ?? "Lost control of the environment");
  const next: EnvRecord = {
    ...rec,
    state: outcome.to,
    tasks: outcome.tasks,
    controller: null,
    history: [...rec.history, entry].slice(-100),
    ...res.head,
    ...(outcome.destroyed ? { destroyed: true } : {}),
  };
  if (outcome.reason) next.reason = outcome.reason;
  else delete next.reason;
  return next;
}

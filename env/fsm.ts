/**
 * AliECS's environment state machine (AliceO2Group/Control, `core/environment`), exactly: events, the
 * states they leave and reach, the task state each environment state expects, and how task states add up.
 *
 * @module
 */
import type { EnvEvent, EnvState, TaskEnvState } from "./types.ts";

/** Every event, in the order people meet them. */
export const ENV_EVENTS: readonly EnvEvent[] = [
  "DEPLOY",
  "CONFIGURE",
  "RESET",
  "START_ACTIVITY",
  "STOP_ACTIVITY",
  "EXIT",
  "GO_ERROR",
  "RECOVER",
];

/** event → [states it may leave, state it reaches]. Nothing leaves DONE. */
export const TRANSITIONS: Readonly<Record<EnvEvent, readonly [readonly EnvState[], EnvState]>> = {
  DEPLOY: [["STANDBY"], "DEPLOYED"],
  CONFIGURE: [["DEPLOYED"], "CONFIGURED"],
  RESET: [["CONFIGURED"], "DEPLOYED"],
  START_ACTIVITY: [["CONFIGURED"], "RUNNING"],
  STOP_ACTIVITY: [["RUNNING"], "CONFIGURED"],
  EXIT: [["STANDBY", "DEPLOYED", "CONFIGURED"], "DONE"],
  GO_ERROR: [["STANDBY", "DEPLOYED", "CONFIGURED", "RUNNING"], "ERROR"],
  RECOVER: [["ERROR"], "DEPLOYED"],
};

/** True when `event` names an event of the machine. */
export function isEnvEvent(event: string): event is EnvEvent {
  return Object.hasOwn(TRANSITIONS, event);
}

/** The events allowed from `state`, in {@linkcode ENV_EVENTS} order. */
export function allowedEvents(state: EnvState): EnvEvent[] {
  return ENV_EVENTS.filter((e) => TRANSITIONS[e][0].includes(state));
}

/** The state `event` leads to from `state`, or `undefined` when it is not allowed there. */
export function nextState(state: EnvState, event: EnvEvent): EnvState | undefined {
  const [from, to] = TRANSITIONS[event];
  return from.includes(state) ? to : undefined;
}

/** The state of a controlled task while its environment is in `state`. */
export function taskStateFor(state: EnvState): TaskEnvState {
  switch (state) {
    case "STANDBY":
    case "DEPLOYED":
      return "STANDBY";
    case "CONFIGURED":
      return "CONFIGURED";
    case "RUNNING":
      return "RUNNING";
    case "ERROR":
      return "ERROR";
    case "DONE":
      return "DONE";
  }
}

/**
 * The environment's task state: all equal → that state, any ERROR → ERROR, INVARIANT neutral (all
 * INVARIANT, or none at all → INVARIANT), otherwise MIXED.
 */
export function aggregateTaskStates(states: Iterable<TaskEnvState>): TaskEnvState | "MIXED" {
  let seen: TaskEnvState | undefined;
  let mixed = false;
  for (const s of states) {
    if (s === "ERROR") return "ERROR";
    if (s === "INVARIANT") continue;
    if (seen === undefined) seen = s;
    else if (seen !== s) mixed = true;
  }
  return mixed ? "MIXED" : seen ?? "INVARIANT";
}

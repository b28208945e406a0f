/**
 * Contracts of environments: states, events, the control an environment file adds to a topology, and the
 * replicated record every agent holds.
 *
 * @module
 */

/** AliECS environment states. */
export type EnvState = "STANDBY" | "DEPLOYED" | "CONFIGURED" | "RUNNING" | "ERROR" | "DONE";
/** AliECS environment events. */
export type EnvEvent =
  | "DEPLOY"
  | "CONFIGURE"
  | "RESET"
  | "START_ACTIVITY"
  | "STOP_ACTIVITY"
  | "EXIT"
  | "GO_ERROR"
  | "RECOVER";
/** A task's state within an environment; INVARIANT for tasks outside control. */
export type TaskEnvState = "STANDBY" | "CONFIGURED" | "RUNNING" | "ERROR" | "DONE" | "INVARIANT";

/**
 * How a task takes part: `direct` answers every transition through the task API, `basic` runs while
 * RUNNING, `hook` runs once at its trigger (its exit code is the result), `none` runs from DEPLOY to EXIT.
 */
export type ControlMode = "direct" | "basic" | "hook" | "none";

/** One rule of an environment file: the first rule whose pattern matches a task path applies. */
export interface ControlRule {
  /** Regular expression on the whole runtime path. */
  tasks: string;
  mode: ControlMode;
  /** A failing or crashing critical task sends the environment to ERROR (default: true but for `none`). */
  critical: boolean;
  /** Hooks only: `before_EVENT`, `leave_STATE`, `enter_STATE` or `after_EVENT`, with an optional `±weight`. */
  trigger?: string;
  /** Hooks only: longest run in ms. */
  timeoutMs?: number;
}

/** The control part of an environment, as replicated. */
export interface EnvControl {
  rules: ControlRule[];
  /** event → ms a direct task has to answer (`default` for the others). */
  timeoutsMs: Record<string, number>;
}

/** One transition as remembered. */
export interface EnvTransition {
  event: EnvEvent;
  from: EnvState;
  to: EnvState;
  ok: boolean;
  /** Who asked: `user@host (peer)`, or `agent:<peer>` for one the mesh applied itself. */
  by: string;
  startedAt: number;
  ms: number;
  reason?: string;
  runNumber?: number;
}

/** A task as the environment sees it. */
export interface EnvTask {
  state: TaskEnvState;
  mode: ControlMode;
  critical: boolean;
  reason?: string;
}

/** The replicated state of one environment; the highest (epoch, seq) wins. */
export interface EnvRecord {
  id: string;
  /** The topology it runs (same ID). */
  topologyId: string;
  file: string;
  state: EnvState;
  /** Raised by every claim (a controller taking the environment, or the mesh raising ERROR). */
  epoch: number;
  /** Raised by every write within an epoch. */
  seq: number;
  /** The current run's number while RUNNING (and after, until the next START_ACTIVITY), else null. */
  runNumber: number | null;
  control: EnvControl;
  tasks: Record<string, EnvTask>;
  /** Set while a controller applies an event; past `deadline` the mesh calls it lost. */
  controller: { by: string; peer: string; event: EnvEvent; startedAt: number; deadline: number } | null;
  history: EnvTransition[];
  reason?: string;
  destroyed: boolean;
  createdAt: number;
  updatedAt: number;
}

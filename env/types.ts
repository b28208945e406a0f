/**
 * Contracts of environments: states, events, the control an environment file adds to a topology, and the
 * replicated record every agent holds.
 *
 * @module
 */

import type * as v from "valibot";
import type {
  ControlModeSchema,
  ControlRuleSchema,
  EnvControlSchema,
  EnvRecordSchema,
  EnvStateSchema,
  EnvTaskSchema,
  EnvTaskStateSchema,
  EnvTransitionSchema,
} from "./protocols.ts";

/** AliECS environment states. */
export type EnvState = v.InferOutput<typeof EnvStateSchema>;
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
export type TaskEnvState = v.InferOutput<typeof EnvTaskStateSchema>;
/** How a task takes part (see `ControlModeSchema`). */
export type ControlMode = v.InferOutput<typeof ControlModeSchema>;
/** One rule of an environment file: the first rule whose pattern matches a task path applies. */
export type ControlRule = v.InferOutput<typeof ControlRuleSchema>;
/** The control part of an environment, as replicated. */
export type EnvControl = v.InferOutput<typeof EnvControlSchema>;
/** One transition as remembered. */
export type EnvTransition = v.InferOutput<typeof EnvTransitionSchema>;
/** A task as the environment sees it. */
export type EnvTask = v.InferOutput<typeof EnvTaskSchema>;
/** The replicated state of one environment; the highest (epoch, seq) wins. */
export type EnvRecord = v.InferOutput<typeof EnvRecordSchema>;

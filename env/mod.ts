/**
 * Environments: ALICE AliECS's state machine over a DDS topology — task control (`direct`, `basic`,
 * `hook`, `none`), hooks in AliECS's order with weights, run numbers, replicated records any peer can show
 * or control.
 *
 * @example
 * ```ts
 * import { controlEnvironment } from "./mod.ts";
 * await controlEnvironment({ ...commanderInit, by: "alice@laptop" }, "readout", "CONFIGURE");
 * ```
 *
 * @module
 */
export {
  aggregateTaskStates,
  allowedEvents,
  ENV_EVENTS,
  isEnvEvent,
  nextState,
  taskStateFor,
  TRANSITIONS,
} from "./fsm.ts";
export { momentsOf, parseTrigger, planTransition } from "./hooks.ts";
export type { PlanStep, Trigger } from "./hooks.ts";
export { classify, DEFAULT_TIMEOUT_MS, isEnvFileText, parseEnvFile, ruleFor, timeoutFor } from "./file.ts";
export type { EnvFile } from "./file.ts";
export {
  EnvConflictError,
  EnvEventRefusedError,
  EnvFileError,
  EnvNotFoundError,
  EnvTransitionError,
} from "./errors.ts";
export {
  controlEnvironment,
  createEnvironment,
  destroyEnvironment,
  fetchEnv,
  fetchEnvs,
  findArbiter,
  stopEnvironmentTopology,
} from "./controller.ts";
export { sendTransition } from "./send_transition.ts";
export type { TaskAnswer } from "./send_transition.ts";
export type { ControlResult, EnvControllerInit } from "./controller.ts";
export { arbiterOf, highestRun, startEnvService } from "./service.ts";
export type { EnvService, EnvServiceInit } from "./service.ts";
export { applyClaim, EnvRecords, newerEnv } from "./records.ts";
export { expandTaskStates, taskStateEvents } from "./task_events.ts";
export type { TaskStateEvent } from "./task_events.ts";
export { ENV_PROTOCOL, ENV_TOPIC, EnvRecordSchema } from "./protocols.ts";
export type * from "./types.ts";

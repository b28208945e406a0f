/**
 * Resource-management plug-ins that start agents.
 *
 * @module
 */
export { AgentStartError } from "./errors.ts";
export { createLocalhostRms } from "./localhost.ts";
export { cmdlineIncludes, isAlive, terminate } from "./process_tree.ts";
export type {
  AgentJob,
  CancelOptions,
  CancelResult,
  JobStatus,
  RmsPlugin,
  SelfCommand,
  SessionRef,
  SubmitRequest,
} from "./types.ts";
export { getRms, RMS_NAMES } from "./registry.ts";

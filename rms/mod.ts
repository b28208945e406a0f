/**
 * Resource-management plug-ins that start agents.
 *
 * @module
 */
export {
  AgentStartError,
  PilotStepError,
  RmsConfigError,
  RmsToolMissingError,
  SubmitError,
} from "./errors.ts";
export { createLocalhostRms } from "./localhost.ts";
export { createSshRms } from "./ssh.ts";
export { createSlurmRms } from "./slurm.ts";
export { createSgeRms } from "./sge.ts";
export type { SgeConfig } from "./sge.ts";
export { BUILTIN_STEPS, defaultPilot, parsePilotLine, renderPilot, resolvePilot } from "./pilot.ts";
export { loadPilotsFile, pilotStepsFor, resolvePilotFor, resourceType } from "./pilots.ts";
export type { PilotFor, PilotResolution, PilotsFile } from "./pilots.ts";
export type { PilotConfig, PilotMessage, PilotMode, PilotReport, PilotScript, PilotStep } from "./pilot.ts";
export { parseDdsSshConfig, parseSshConfig, sshHosts } from "./ssh_config.ts";
export type { SshConfig, SshHost } from "./ssh_config.ts";
export type { SlurmConfig } from "./slurm.ts";
export { cmdlineIncludes, isAlive, terminate } from "./process_tree.ts";
export type {
  AgentFailure,
  AgentJob,
  CancelOptions,
  CancelResult,
  JobStatus,
  PilotStepsRequest,
  RmsConfig,
  RmsPlugin,
  SelfCommand,
  SessionRef,
  SubmitEvent,
  SubmitRequest,
} from "./types.ts";
export { getRms, RMS_NAMES } from "./registry.ts";

/**
 * Resource-management plug-ins that start agents.
 *
 * @module
 */
export { AgentStartError, RmsConfigError, RmsToolMissingError, SubmitError } from "./errors.ts";
export { createLocalhostRms } from "./localhost.ts";
export { createSshRms } from "./ssh.ts";
export { createSlurmRms } from "./slurm.ts";
export { defaultPilot, parsePilotLine, renderPilot, resolvePilot } from "./pilot.ts";
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
  RmsConfig,
  RmsPlugin,
  SelfCommand,
  SessionRef,
  SubmitEvent,
  SubmitRequest,
} from "./types.ts";
export { getRms, RMS_NAMES } from "./registry.ts";

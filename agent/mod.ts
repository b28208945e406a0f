/**
 * The agent: the daemon on every node.
 *
 * @example
 * ```ts
 * import { createLogger, startAgent } from "./mod.ts";
 * await using agent = await startAgent({ dataDir, swarmKey, slots: 4, log: createLogger() });
 * await agent.joined;
 * ```
 *
 * @module
 */
export { Agent, startAgent } from "./agent.ts";
export type { AgentInit } from "./agent.ts";
export { createLogger } from "./log.ts";
export type { RunnerEvent, TaskFile, TaskSpec, TaskState, TaskStatus } from "./types.ts";
export type { Logger, LoggerInit, LogLevel } from "./log.ts";
export { readStateFile, STATE_FILE, writeStateFile } from "./state_file.ts";
export type { AgentStateFile } from "./state_file.ts";

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
export { RunnerClosedError, TaskAlreadyRunningError, TaskFileError } from "./errors.ts";
export { createTaskRunner } from "./runner/mod.ts";
export { isGone } from "./runner/mod.ts";
export type { StopOptions, StopResult, TaskFilter, TaskRunner, TaskRunnerInit } from "./runner/mod.ts";
export { SlotTable } from "./leases/mod.ts";
export type { LeaseResult } from "./leases/mod.ts";
export { RECONCILE_RULES } from "./desired/mod.ts";
export type { ReconcileRule } from "./desired/mod.ts";
export {
  LogChunkSchema,
  LOGS_PROTOCOL,
  LogsRequestSchema,
  TASKS_PROTOCOL,
  TasksResponseSchema,
  TOPOLOGIES_TOPIC,
  TopologyRecordSchema,
} from "./wire/mod.ts";
export type { LogChunk, TopologyRecord } from "./wire/mod.ts";
export { EventMessageSchema, EventSchema } from "./wire/mod.ts";
export type { BatchedEvent, EventMessage, EventOf, ShoalEvent } from "./wire/mod.ts";
export { createLogger } from "./log.ts";
export type { RunnerEvent, TaskFile, TaskSpec, TaskState, TaskStatus } from "./wire/mod.ts";
export type { Logger, LoggerInit, LogLevel } from "./log.ts";
export { readStateFile, STATE_FILE, writeStateFile } from "./state_file.ts";
export type { AgentStateFile } from "./state_file.ts";
export { KvStore, MAX_VALUE_BYTES, toValue } from "./kv/mod.ts";
export type { KvEntry } from "./kv/mod.ts";
export { KV_PROTOCOL, KV_TOPIC, KvBatchSchema, KvReplication, listEntries } from "./kv/mod.ts";
export { HybridClock } from "./kv/mod.ts";
export {
  CMD_DIRECT_PROTOCOL,
  CMD_PROTOCOL,
  CMD_TOPIC,
  CmdResponseSchema,
  CustomCommands,
  listenAsTool,
  MAX_PAYLOAD_BYTES,
} from "./commands/mod.ts";
export type { CmdSender, Command as CustomCommand, TaskPlaces, ToolListener } from "./commands/mod.ts";
export {
  addressesAgents,
  matchesAgent,
  matchesCondition,
  matchesTool,
  parseCondition,
} from "./commands/mod.ts";
export type { ConditionTarget, RoutableTask } from "./commands/mod.ts";
export { AGENT_VERBS, agentStatus, DEFAULT_LOG_LINES, startAgentCommands } from "./commands/mod.ts";
export type { AgentCommands, AgentCommandsInit, AgentStatus, StatusSources } from "./commands/mod.ts";
export { startTaskApi, TaskApi } from "./task_api/mod.ts";
export { fetchTaskUsage, readTaskUsage, TASK_USAGE_PROTOCOL } from "./runner/mod.ts";
export type { TaskUsage, TaskUsageResponse } from "./runner/mod.ts";
export type { TaskDoneEvent } from "./task_api/mod.ts";
export { TRANSITION_MARKER } from "./task_api/mod.ts";
export type { TaskTransition } from "./task_api/mod.ts";

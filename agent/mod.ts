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
export {
  type ActivateOptions,
  activateTopology,
  activeRecord,
  errorText,
  expandRecord,
  fetchMembers,
  fetchTasks,
  fetchTopologies,
  putTopology,
  recoverTopology,
  startPaths,
  stopPaths,
  stopTasks,
  stopTopology,
  updateTopology,
} from "./commander.ts";
export type {
  AgentTasks,
  CommanderInit,
  DeployResult,
  PlacedTask,
  RecoverOptions,
  RecoverResult,
  TasksView,
  TopologySource,
} from "./commander.ts";
export { CommanderError, RunnerClosedError, TaskAlreadyRunningError, TaskFileError } from "./errors.ts";
export { createTaskRunner } from "./runner.ts";
export { isGone } from "./_process_tree.ts";
export type { StopOptions, StopResult, TaskFilter, TaskRunner, TaskRunnerInit } from "./runner.ts";
export { SlotTable } from "./slots.ts";
export type { LeaseResult } from "./slots.ts";
export { RECONCILE_RULES } from "./reconcile.ts";
export type { ReconcileRule } from "./reconcile.ts";
export {
  LogChunkSchema,
  LOGS_PROTOCOL,
  LogsRequestSchema,
  TASKS_PROTOCOL,
  TasksResponseSchema,
  TOPOLOGIES_TOPIC,
  TopologyRecordSchema,
} from "./protocols.ts";
export type { LogChunk, TopologyRecord } from "./protocols.ts";
export { createLogger } from "./log.ts";
export type { RunnerEvent, TaskFile, TaskSpec, TaskState, TaskStatus } from "./types.ts";
export type { Logger, LoggerInit, LogLevel } from "./log.ts";
export { readStateFile, STATE_FILE, writeStateFile } from "./state_file.ts";
export type { AgentStateFile } from "./state_file.ts";
export { KvStore, MAX_VALUE_BYTES, toValue } from "./kv_store.ts";
export type { KvEntry } from "./kv_store.ts";
export { KV_PROTOCOL, KV_TOPIC, KvBatchSchema, KvReplication, listEntries } from "./kv_replication.ts";
export { HybridClock } from "./hlc.ts";
export {
  CMD_DIRECT_PROTOCOL,
  CMD_PROTOCOL,
  CMD_TOPIC,
  CmdResponseSchema,
  CustomCommands,
  listenAsTool,
  MAX_PAYLOAD_BYTES,
} from "./custom_commands.ts";
export type { CmdSender, Command as CustomCommand, TaskPlaces, ToolListener } from "./custom_commands.ts";
export {
  addressesAgents,
  matchesAgent,
  matchesCondition,
  matchesTool,
  parseCondition,
} from "./conditions.ts";
export type { ConditionTarget, RoutableTask } from "./conditions.ts";
export { AGENT_VERBS, agentStatus, DEFAULT_LOG_LINES, startAgentCommands } from "./agent_commands.ts";
export type { AgentCommands, AgentCommandsInit, AgentStatus, StatusSources } from "./agent_commands.ts";
export { startTaskApi, TaskApi } from "./task_api.ts";
export { fetchTaskUsage, readTaskUsage, TASK_USAGE_PROTOCOL } from "./task_usage.ts";
export type { TaskUsage, TaskUsageResponse } from "./task_usage.ts";
export type { TaskDoneEvent } from "./task_api.ts";
export { TRANSITION_MARKER } from "./_task_transitions.ts";
export type { TaskTransition } from "./_task_transitions.ts";

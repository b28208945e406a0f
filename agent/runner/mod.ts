/**
 * The task runner: spawning a task in its sandbox with its environment, its log files, the reaper and
 * watchdog, terminating whole process trees, the lines a task runs and the content cache its files come from.
 *
 * @module
 */
export { ContentCache, LINK_FROM } from "./_content_cache.ts";
export { isGone, signal } from "./_process_tree.ts";
export { spawnFailureReason } from "./_spawn.ts";
export { tailLines } from "./_tail.ts";
export { startLogService } from "./log_service.ts";
export { createTaskRunner } from "./runner.ts";
export type { StopOptions, StopResult, TaskFilter, TaskRunner, TaskRunnerInit } from "./runner.ts";
export { fetchTaskUsage, readTaskUsage, startTaskUsageService, TASK_USAGE_PROTOCOL } from "./task_usage.ts";
export type { TaskUsage, TaskUsageResponse } from "./task_usage.ts";

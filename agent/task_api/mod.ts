/**
 * The task API: the HTTP server on the agent's Unix socket (and loopback port) that tasks speak, its
 * per-task tokens, and the routes of key-values, commands and environment transitions.
 *
 * @module
 */
export { TRANSITION_MARKER } from "./_task_transitions.ts";
export type { TaskTransition } from "./_task_transitions.ts";
export { startTaskApi, TaskApi } from "./task_api.ts";
export type { TaskDoneEvent, TaskRoute } from "./task_api.ts";

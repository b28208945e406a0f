/**
 * Leases: the agent's slot table, the lease/stop/tasks protocols it serves, and the leases of
 * commanders that died before recording their topology (orphans).
 *
 * @module
 */
export { OrphanLeases } from "./orphan_leases.ts";
export { SlotTable } from "./slots.ts";
export type { LeaseResult } from "./slots.ts";
export { startTaskService, stopLocalTasks } from "./task_service.ts";
export type { TaskService, TaskServiceInit } from "./task_service.ts";

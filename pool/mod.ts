/**
 * The pool: a session's agents shared by every topology. Topologies queue with priorities and fair share
 * and start whole when slots free up; the pool grows through an RMS plug-in while demand exceeds free
 * slots and shrinks as idle agents exit; unhealthy agents take no leases.
 *
 * @module
 */
export {
  cancelQueued,
  fetchPool,
  type PoolView,
  type QueueRequest,
  queueTopology,
  waitStarted,
} from "./client.ts";
export { type Clock as PoolClock, REAL_CLOCK as POOL_REAL_CLOCK } from "./clock.ts";
export { PoolError } from "./errors.ts";
export { agentSlots, fitsOn } from "./fit.ts";
export { type GrowDecision, type GrowInput, pilotsToSubmit } from "./grow.ts";
export {
  DEFAULT_MIN_FREE_DISK,
  formatBytes,
  HEALTH_LABEL,
  healthFromLabels,
  healthLabels,
  HealthMonitor,
  type HealthOptions,
  type HealthProbe,
  MAX_LOAD_LABEL,
  MIN_FREE_DISK_LABEL,
  parseBytes,
  systemProbe,
} from "./health.ts";
export { DEFAULT_IDLE_TIMEOUT_MS, IDLE_TIMEOUT_LABEL, IdleWatch } from "./idle.ts";
export { ENTRY_STATES, POOL_PROTOCOL, POOL_TOPIC, type Progress, type QueueEntry } from "./protocols.ts";
export { newerEntry, POOL_DIGEST, PoolRecords } from "./records.ts";
export { decide, type DecideInput, type Decision, queueOrder } from "./scheduler.ts";
export { type PoolService, schedulerOf, startPoolService } from "./service.ts";

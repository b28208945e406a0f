/**
 * The wire contract between commanders and agents: protocol names and schemas, task specs and
 * statuses, the blobs a lease ships, and the events gossiped.
 *
 * @module
 */
export { EventMessageSchema, EventSchema } from "./events.ts";
export type { BatchedEvent, EventMessage, EventOf, ShoalEvent } from "./events.ts";
export { packBlobs, unpackBlobs } from "./lease_blobs.ts";
export type { StagedRef } from "./lease_blobs.ts";
export {
  CLAIM_PROTOCOL,
  ClaimRequestSchema,
  ClaimResponseSchema,
  LEASE_COMMIT_PROTOCOL,
  LEASE_PROTOCOL,
  LeaseCommitRequestSchema,
  LeaseCommitResponseSchema,
  LeaseRequestSchema,
  LeaseResponseSchema,
  LogChunkSchema,
  LOGS_PROTOCOL,
  LogsRequestSchema,
  RECONCILE_PROTOCOL,
  ReconcileRequestSchema,
  ReconcileResponseSchema,
  STOP_PROTOCOL,
  StopRequestSchema,
  StopResponseSchema,
  TASKS_PROTOCOL,
  TasksRequestSchema,
  TasksResponseSchema,
  TOPOLOGIES_PROTOCOL,
  TOPOLOGIES_TOPIC,
  TopologiesRequestSchema,
  TopologiesResponseSchema,
  TopologyRecordSchema,
} from "./protocols.ts";
export type {
  ClaimResponse,
  Instance,
  LeaseRequest,
  LeaseResponse,
  LogChunk,
  TasksResponse,
  TopologyRecord,
} from "./protocols.ts";
export type { RunnerEvent, TaskFile, TaskSpec, TaskState, TaskStatus } from "./types.ts";

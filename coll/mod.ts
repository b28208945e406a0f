/**
 * Collectives (STCI): named, concurrent barrier, broadcast, gather, allgather, scatter, reduce and
 * allreduce among a topology's tasks, combined by each agent for its local members and then along a
 * tree over the participating agents.
 *
 * @example
 * ```ts
 * import { connectTask } from "../client/mod.ts";
 * const task = connectTask();
 * await task.coll.barrier("ready", { timeoutMs: 60_000 });
 * const total = await task.coll.allreduce("events", "42", { op: "sum" }); // every member's sum, as text
 * ```
 *
 * @module
 */
export { CollService, startCollService } from "./service.ts";
export type { CollCall, CollCaller, CollClock, CollServiceInit } from "./service.ts";
export { collRoute, errorJson, MAX_COLL_VALUE_BYTES, resultJson } from "./task_route.ts";
export { CollectiveFailedError, CollectiveGroupError, CollectiveMismatchError } from "./errors.ts";
export { normaliseGroup, selectMembers } from "./group.ts";
export type { GroupTask } from "./group.ts";
export { buildTree, hash32 } from "./tree.ts";
export type { Tree } from "./tree.ts";
export { contribution, merge, mergeAll, parseNumbers, resultFor } from "./combine.ts";
export {
  COLL_OPS,
  COLL_PROTOCOL,
  CollRequestSchema,
  CollResponseSchema,
  DEFAULT_FANOUT,
  REDUCE_OPS,
  ROOTED_OPS,
} from "./types.ts";
export type { CollOp, CollSpec, MemberResult, Outcome, Partial, ReduceOp } from "./types.ts";

/**
 * Wire shapes of the pool: the replicated queue entry, its gossip topic and the request protocol every
 * agent serves (the scheduler — the alive agent with the lowest peer ID — starts what is queued).
 *
 * @module
 */
import * as v from "valibot";
import { EnvRecordSchema } from "../env/protocols.ts";

/** Gossip topic of queue entries. */
export const POOL_TOPIC = "/shoal/pool/1";
/** Request protocol: list entries, queue one, cancel one, the scheduler's status. */
export const POOL_PROTOCOL = "/shoal/pool/1.0.0";

const Name = v.pipe(v.string(), v.maxLength(1024));
const Text = v.pipe(v.string(), v.maxLength(16 * 1024));
const Int = v.pipe(v.number(), v.integer(), v.minValue(0));

/** Where a queued topology is in its life. */
export const ENTRY_STATES = ["queued", "starting", "running", "done", "cancelled"] as const;

/** One queued topology, replicated on every agent; the highest (version, updatedAt) wins. */
export const QueueEntrySchema = v.object({
  /** The topology ID it is activated under. */
  id: Name,
  name: Name,
  /** Higher runs first. */
  priority: v.pipe(v.number(), v.integer(), v.minValue(-1_000_000), v.maxValue(1_000_000)),
  /** Fair-share group: equal priorities are served round-robin over groups (default: the ID). */
  share: Name,
  state: v.picklist(ENTRY_STATES),
  version: Int,
  /** Runtime tasks, i.e. slots wanted. */
  tasks: Int,
  source: v.pipe(v.string(), v.maxLength(8 * 1024 * 1024)),
  file: Name,
  vars: v.record(v.string(), v.string()),
  queuedAt: v.number(),
  queuedBy: Name,
  /** The scheduler that started it (state `starting` and later). */
  startedBy: v.optional(Name),
  startedAt: v.optional(v.number()),
  endedAt: v.optional(v.number()),
  /** When the last start attempt failed (it is tried again a little later). */
  failedAt: v.optional(v.number()),
  /** Why the last start attempt failed, or why it cannot start now. */
  reason: v.optional(Text),
  updatedAt: v.number(),
  /** Queued by `shoal env create --queue`: started as that environment (DEPLOY), not as a bare topology. */
  env: v.optional(v.object({ control: EnvRecordSchema.entries.control, by: Name })),
});
/** A queue entry. */
export type QueueEntry = v.InferOutput<typeof QueueEntrySchema>;

/** Progress of one topology as the scheduler counts it. */
export const ProgressSchema = v.object({
  id: Name,
  agents: Int,
  slots: Int,
  done: Int,
  all: Int,
});
/** Progress of one topology. */
export type Progress = v.InferOutput<typeof ProgressSchema>;

/** Request of {@linkcode POOL_PROTOCOL}. */
export const PoolRequestSchema = v.variant("op", [
  v.object({ op: v.literal("list") }),
  v.object({ op: v.literal("queue"), entry: QueueEntrySchema }),
  v.object({ op: v.literal("cancel"), id: Name, by: Name }),
]);
/** A request of {@linkcode POOL_PROTOCOL}. */
export type PoolRequest = v.InferOutput<typeof PoolRequestSchema>;

/** Response of {@linkcode POOL_PROTOCOL}. */
export const PoolResponseSchema = v.object({
  ok: v.boolean(),
  reason: v.optional(Text),
  entry: v.optional(QueueEntrySchema),
  entries: v.optional(v.array(QueueEntrySchema)),
  /** The answering agent's peer ID, and whether it is the scheduler. */
  from: Name,
  scheduler: v.boolean(),
  /** The scheduler's counts of running topologies (from the scheduler only). */
  progress: v.optional(v.array(ProgressSchema)),
  /** The scheduler's starting order of queued topologies, with why each waits. */
  order: v.optional(v.array(v.object({ id: Name, position: Int, waiting: Text }))),
});
/** A response of {@linkcode POOL_PROTOCOL}. */
export type PoolResponse = v.InferOutput<typeof PoolResponseSchema>;

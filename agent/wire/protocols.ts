/**
 * The agent's request/response protocols and gossip topics for deploying and controlling tasks, with the
 * schemas that check everything read from the wire.
 *
 * @module
 */
import * as v from "valibot";
// Directly, not through stage/mod.ts: that exports the agent-side service too, which imports this area.
import { NAME_RE, StageSourceSchema } from "../../stage/types.ts";

/** Lease slots and start tasks on them, atomically per request. */
export const LEASE_PROTOCOL = "/shoal/lease/1.0.0";
/** Stop tasks (of a topology, or named paths). */
export const STOP_PROTOCOL = "/shoal/stop/1.0.0";
/** List this agent's tasks. */
export const TASKS_PROTOCOL = "/shoal/tasks/1.0.0";
/** Read or store desired topology state. */
export const TOPOLOGIES_PROTOCOL = "/shoal/topologies/1.0.0";
/** Read task logs (whole, or followed). */
export const LOGS_PROTOCOL = "/shoal/logs/1.0.0";
/** Gossip topic of desired topology state. */
export const TOPOLOGIES_TOPIC = "/shoal/topologies/1";

const Name = v.pipe(v.string(), v.maxLength(1024));
const Int = v.pipe(v.number(), v.integer());

/** A task as sent to an agent; mirrors `TaskSpec` in `types.ts`. */
export const TaskSpecSchema = v.object({
  topologyId: Name,
  path: Name,
  id: v.pipe(v.string(), v.maxLength(32)),
  name: Name,
  index: Int,
  collectionName: v.optional(Name),
  collectionIndex: v.optional(Int),
  groupName: Name,
  exe: v.pipe(v.string(), v.maxLength(64 * 1024)),
  env: v.optional(v.pipe(v.string(), v.maxLength(1024 * 1024))),
  files: v.optional(v.array(v.object({
    name: Name,
    content: v.union([v.string(), v.instance(Uint8Array)]),
    mode: v.optional(Int),
  }))),
  maxRestarts: v.pipe(Int, v.minValue(0)),
  slotId: v.string(),
  sessionId: v.string(),
  extraEnv: v.optional(v.record(v.string(), v.string())),
  properties: v.optional(v.array(v.object({
    name: Name,
    access: v.picklist(["read", "write", "readwrite"]),
    scope: v.picklist(["global", "collection"]),
  }))),
  collectionPath: v.optional(Name),
});

/**
 * A file in a lease request: its content inline, the index of one of the request's `blobs`, or content
 * staged on the agent beforehand (`lease_staging.ts`), by its chunk-list ID.
 */
const LeaseFileSchema = v.pipe(
  v.object({
    name: Name,
    content: v.optional(v.union([v.string(), v.instance(Uint8Array)])),
    blob: v.optional(v.pipe(Int, v.minValue(0))),
    staged: v.optional(v.object({ id: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)), size: Int })),
    /** A staged name (a DDS asset whose value is `$SHOAL_STAGE/<name>`), linked in once present. */
    stage: v.optional(v.pipe(v.string(), v.regex(NAME_RE))),
    mode: v.optional(Int),
  }),
  v.check(
    (f) => [f.content, f.blob, f.staged, f.stage].filter((x) => x !== undefined).length === 1,
    "a file has exactly one of content, blob, staged or stage",
  ),
);

/**
 * Request of {@linkcode LEASE_PROTOCOL}: slot IDs are filled in by the agent. Large shipped files travel
 * once in `blobs` (see `lease_blobs.ts`).
 */
export const LeaseRequestSchema = v.object({
  topologyId: Name,
  epoch: v.pipe(Int, v.minValue(0)),
  commander: Name,
  tasks: v.array(
    v.object({
      ...TaskSpecSchema.entries,
      slotId: v.optional(v.string()),
      files: v.optional(v.array(LeaseFileSchema)),
    }),
  ),
  blobs: v.optional(v.array(v.instance(Uint8Array))),
  /**
   * Where the staged names these tasks declare can be pulled from (`stage/declared.ts`): an agent that
   * does not hold one pulls it before starting the tasks that declare it. No file bytes.
   */
  stage: v.optional(v.pipe(v.array(StageSourceSchema), v.maxLength(1024))),
  /**
   * Reserve the slots but start nothing until {@linkcode LEASE_COMMIT_PROTOCOL} says so (the pool's
   * activations: a topology starts whole or no task of it runs, even briefly). Uncommitted holds lapse.
   */
  hold: v.optional(v.boolean()),
});
/** A lease request. */
export type LeaseRequest = v.InferInput<typeof LeaseRequestSchema>;

/** Lifecycle of a task on its agent. */
export const TaskStateSchema = v.picklist([
  "starting",
  "running",
  "restarting",
  "exited",
  "failed",
  "stopped",
]);

const TaskStatusSchema = v.object({
  topologyId: v.string(),
  path: v.string(),
  id: v.string(),
  state: TaskStateSchema,
  pid: v.optional(v.number()),
  restarts: v.number(),
  startedAt: v.optional(v.number()),
  exitCode: v.optional(v.nullable(v.number())),
  signal: v.optional(v.nullable(v.string())),
  reason: v.optional(v.string()),
  stdoutFile: v.optional(v.string()),
  stderrFile: v.optional(v.string()),
});

/** Response of {@linkcode LEASE_PROTOCOL}. */
export const LeaseResponseSchema = v.variant("granted", [
  v.object({
    granted: v.literal(true),
    agent: v.string(),
    tasks: v.array(TaskStatusSchema),
    /** With `hold`: what to commit or release. */
    hold: v.optional(v.string()),
  }),
  v.object({
    granted: v.literal(false),
    agent: v.string(),
    reason: v.string(),
    free: v.number(),
  }),
]);
/** A lease response. */
export type LeaseResponse = v.InferOutput<typeof LeaseResponseSchema>;

/** Start (or release) the tasks of a held lease. */
export const LEASE_COMMIT_PROTOCOL = "/shoal/lease-commit/1.0.0";
/** Request of {@linkcode LEASE_COMMIT_PROTOCOL}. */
export const LeaseCommitRequestSchema = v.object({
  hold: v.pipe(v.string(), v.maxLength(64)),
  commit: v.boolean(),
});
/** Response of {@linkcode LEASE_COMMIT_PROTOCOL}: the started tasks, or why the hold is gone. */
export const LeaseCommitResponseSchema = v.object({
  ok: v.boolean(),
  agent: v.string(),
  tasks: v.array(TaskStatusSchema),
  reason: v.optional(v.string()),
});

/** Request of {@linkcode STOP_PROTOCOL}. */
export const StopRequestSchema = v.object({
  topologyId: Name,
  paths: v.optional(v.array(Name)),
  graceMs: v.optional(v.pipe(Int, v.minValue(0), v.maxValue(600_000))),
});
/** Response of {@linkcode STOP_PROTOCOL}. */
export const StopResponseSchema = v.object({ agent: v.string(), stopped: v.number(), killed: v.number() });

/** Request of {@linkcode TASKS_PROTOCOL}. */
export const TasksRequestSchema = v.object({ topologyId: v.optional(Name) });
/** Response of {@linkcode TASKS_PROTOCOL}. */
export const TasksResponseSchema = v.object({
  agent: v.string(),
  host: v.string(),
  slots: v.object({ total: v.number(), free: v.number() }),
  tasks: v.array(TaskStatusSchema),
  /** Topologies this agent's side of a partition sees no majority for, so it re-places nothing. */
  minority: v.optional(v.array(v.object({
    topologyId: v.string(),
    sees: v.number(),
    of: v.number(),
    need: v.number(),
    since: v.number(),
  }))),
});
/** A tasks response. */
export type TasksResponse = v.InferOutput<typeof TasksResponseSchema>;

/** The desired state of one topology, replicated on every agent; last (epoch, version) wins. */
export const TopologyRecordSchema = v.object({
  id: Name,
  name: Name,
  epoch: v.pipe(Int, v.minValue(0)),
  version: v.pipe(Int, v.minValue(0)),
  commander: Name,
  state: v.picklist(["active", "stopped"]),
  /** The topology file's text (XML or JSON). */
  source: v.pipe(v.string(), v.maxLength(8 * 1024 * 1024)),
  file: Name,
  vars: v.record(v.string(), v.string()),
  /** Agent ID → runtime task paths placed there. */
  placement: v.record(v.string(), v.array(v.string())),
  updatedAt: v.number(),
  /**
   * The agents alive in the writer's view when the record was written: the membership a side must see a
   * strict majority of before it re-places lost tasks (`failover.ts`). Absent in older records: the holders.
   */
  members: v.optional(v.array(Name)),
  /**
   * How a path that runs twice after a heal is reduced to one instance (`reconcile.ts`); absent:
   * `keep_replacement`.
   */
  reconcile: v.optional(v.picklist(["keep_replacement", "keep_original", "longest_running", "best_score"])),
  /** Paths an update is removing: no longer placed, perhaps still stopping; never adopted back. */
  removing: v.optional(v.array(Name)),
});
/** Desired state of a topology. */
export type TopologyRecord = v.InferOutput<typeof TopologyRecordSchema>;

/** Request of {@linkcode TOPOLOGIES_PROTOCOL}: read all, or store one (and gossip it). */
export const TopologiesRequestSchema = v.variant("op", [
  v.object({ op: v.literal("list") }),
  v.object({ op: v.literal("put"), record: TopologyRecordSchema }),
]);
/** Response of {@linkcode TOPOLOGIES_PROTOCOL}. */
export const TopologiesResponseSchema = v.object({ records: v.array(TopologyRecordSchema) });

/** Claim the next epoch of a topology before re-placing its lost tasks (`claims.ts`). */
export const CLAIM_PROTOCOL = "/shoal/claim/1.0.0";
/** Request of {@linkcode CLAIM_PROTOCOL}. */
export const ClaimRequestSchema = v.object({
  topologyId: Name,
  epoch: Int,
  claimant: Name,
  /** The agents the claimant re-places: each voter must see them dead too. */
  lost: v.optional(v.array(Name)),
});
/** Response of {@linkcode CLAIM_PROTOCOL}: granted, or who holds that epoch (or a later one). */
export const ClaimResponseSchema = v.object({
  granted: v.boolean(),
  epoch: Int,
  claimant: v.string(),
  /** The epoch of the record this agent holds. */
  recordEpoch: Int,
  /** Agents of the claim's `lost` this voter still sees alive (refused for that reason). */
  alive: v.optional(v.array(v.string())),
});
/** A claim answer. */
export type ClaimResponse = v.InferOutput<typeof ClaimResponseSchema>;

/**
 * Reconcile a duplicate: the agent of an instance the record does not place asks the agent it places the
 * path on which of the two stays, under the topology's rule (`reconcile.ts`); that agent decides alone.
 */
export const RECONCILE_PROTOCOL = "/shoal/reconcile/1.0.0";
/** One instance of a duplicated path, as its agent describes it. */
export const InstanceSchema = v.object({
  agent: Name,
  /** The epoch it was leased under. */
  epoch: Int,
  /** When its current run started (ms since the epoch). */
  startedAt: v.number(),
  /** Its agent's free share of slots now, 0–1 (`best_score`). */
  score: v.number(),
});
/** One instance of a duplicated path. */
export type Instance = v.InferOutput<typeof InstanceSchema>;
/** Request of {@linkcode RECONCILE_PROTOCOL}. */
export const ReconcileRequestSchema = v.object({
  topologyId: Name,
  path: Name,
  /** The record the asker judged by. */
  epoch: Int,
  version: Int,
  asker: InstanceSchema,
});
/** Response of {@linkcode RECONCILE_PROTOCOL}: whose instance stays, and the answerer's instance if any. */
export const ReconcileResponseSchema = v.object({
  keep: v.picklist(["asker", "answerer", "retry"]),
  rule: v.string(),
  answerer: v.optional(InstanceSchema),
});

/** Request of {@linkcode LOGS_PROTOCOL}. */
export const LogsRequestSchema = v.object({
  topologyId: v.optional(Name),
  pathRegex: v.pipe(v.string(), v.maxLength(1024)),
  /** Keep the stream open and send what the tasks write from now on. */
  follow: v.optional(v.boolean()),
  /** Bytes from the end of each file (default: everything up to 1 MiB). */
  tailBytes: v.optional(v.pipe(Int, v.minValue(0))),
});
/** A chunk of a task's log, as streamed by {@linkcode LOGS_PROTOCOL}. */
export const LogChunkSchema = v.object({
  topologyId: v.string(),
  path: v.string(),
  stream: v.picklist(["stdout", "stderr"]),
  file: v.string(),
  data: v.instance(Uint8Array),
});
/** A log chunk. */
export type LogChunk = v.InferOutput<typeof LogChunkSchema>;

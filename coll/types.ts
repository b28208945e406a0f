/**
 * Contracts of collectives: operations, the spec every member of a generation must agree on, the
 * partial aggregate that travels up the tree, and the wire shapes of the protocol between agents.
 *
 * @module
 */
import * as v from "valibot";

/** Request protocol between agents: partials up the tree, outcomes down it, failures to the root. */
export const COLL_PROTOCOL = "/shoal/coll/1.0.0";

/** The collective operations. */
export const COLL_OPS = [
  "barrier",
  "broadcast",
  "gather",
  "allgather",
  "scatter",
  "reduce",
  "allreduce",
] as const;
/** A collective operation. */
export type CollOp = (typeof COLL_OPS)[number];

/** How `reduce` and `allreduce` combine values. */
export const REDUCE_OPS = ["sum", "min", "max", "concat"] as const;
/** A reduction. */
export type ReduceOp = (typeof REDUCE_OPS)[number];

/** Operations whose data starts at (or ends at) one root member. */
export const ROOTED_OPS: ReadonlySet<CollOp> = new Set(["broadcast", "gather", "scatter", "reduce"]);

/** Default fan-out of the tree over the participating agents. */
export const DEFAULT_FANOUT = 8;

const Name = v.pipe(v.string(), v.maxLength(1024));
const Int = v.pipe(v.number(), v.integer(), v.minValue(0));
// Not v.instance(Uint8Array), whose type is a Uint8Array of an ArrayBuffer only: results are views of any buffer.
const Bytes = v.custom<Uint8Array>((x) => x instanceof Uint8Array, "Invalid type: Expected Uint8Array");

/** A spec on the wire. */
export const CollSpecSchema = v.object({
  topologyId: Name,
  name: Name,
  /** Normalised group (see `group.ts`): `all`, `collection:P`, `group:G`, `regex:R`, `tasks:A,B`. */
  group: v.pipe(v.string(), v.maxLength(64 * 1024)),
  op: v.picklist(COLL_OPS),
  /** For `reduce`/`allreduce`. */
  reduce: v.optional(v.picklist(REDUCE_OPS)),
  /** Root member path, for rooted operations (default the group's first member). */
  root: v.optional(Name),
  fanout: v.pipe(Int, v.minValue(2), v.maxValue(1024)),
});
/** Identity of a collective and what every member of a generation must agree on. */
export type CollSpec = v.InferOutput<typeof CollSpecSchema>;

/**
 * What some members contributed, combined: how many, and the data the operation keeps — numbers being
 * reduced (decimal strings, so that integer sums stay exact), or ranked byte strings.
 */
export const PartialSchema = v.object({
  count: Int,
  nums: v.optional(v.array(v.pipe(v.string(), v.maxLength(400)))),
  scalar: v.optional(v.boolean()),
  items: v.optional(v.array(v.tuple([Int, Bytes]))),
  parts: v.optional(v.array(Bytes)),
});
/** A partial aggregate (see {@linkcode PartialSchema}). */
export type Partial = v.InferOutput<typeof PartialSchema>;

/** The outcome of a generation, sent down the tree. */
export const OutcomeSchema = v.variant("ok", [
  v.object({ ok: v.literal(true), size: Int, final: PartialSchema }),
  v.object({
    ok: v.literal(false),
    reason: v.pipe(v.string(), v.maxLength(16 * 1024)),
    /** Members that had not contributed (at most `MAX_NAMED`), and how many in all. */
    missing: v.array(Name),
    missingCount: Int,
  }),
]);
/** A generation's outcome (see {@linkcode OutcomeSchema}). */
export type Outcome = v.InferOutput<typeof OutcomeSchema>;

/** How many missing members an error names; the count covers the rest. */
export const MAX_NAMED = 64;

const Ref = { spec: CollSpecSchema, gen: v.pipe(Int, v.minValue(1)) };

/** Request of {@linkcode COLL_PROTOCOL}. */
export const CollRequestSchema = v.variant("type", [
  /** A child's combined partial (its members and its subtree's). */
  v.object({ type: v.literal("up"), ...Ref, partial: PartialSchema }),
  /** The outcome, from the parent (or the root, to an adopted grandchild). */
  v.object({ type: v.literal("down"), ...Ref, outcome: OutcomeSchema }),
  /** To the root: end this generation with `reason`. */
  v.object({ type: v.literal("fail"), ...Ref, reason: v.pipe(v.string(), v.maxLength(16 * 1024)) }),
  /** From the root down: which members had not contributed? */
  v.object({ type: v.literal("missing"), ...Ref }),
  /** To a member's agent: that member ended (gossip); fail the generation if it had not contributed. */
  v.object({ type: v.literal("probe"), ...Ref, member: Name }),
  /**
   * A tool takes a tool place (group `…+tools:N`): sent to any agent with `call`, which builds the spec
   * and forwards it to the root with `spec`. `gen` 0: the root picks the first generation with a free place.
   */
  v.object({
    type: v.literal("tool"),
    topologyId: Name,
    gen: Int,
    by: Name,
    call: v.optional(v.object({
      op: v.picklist(COLL_OPS),
      name: Name,
      group: v.optional(v.pipe(v.string(), v.maxLength(64 * 1024))),
      reduce: v.optional(v.picklist(REDUCE_OPS)),
      root: v.optional(Name),
      fanout: v.optional(Int),
    })),
    spec: v.optional(CollSpecSchema),
    timeoutMs: Int,
    data: v.optional(Bytes),
    parts: v.optional(v.array(Bytes)),
  }),
  /** A tool waits for a generation's outcome (0: the next to end), at any agent, forwarded to the root. */
  v.object({
    type: v.literal("observe"),
    topologyId: Name,
    name: Name,
    group: v.pipe(v.string(), v.maxLength(64 * 1024)),
    gen: Int,
    atRoot: v.boolean(),
  }),
]);
/** A request between agents (see {@linkcode CollRequestSchema}). */
export type CollRequest = v.InferOutput<typeof CollRequestSchema>;

/** Response of {@linkcode COLL_PROTOCOL}. */
export const CollResponseSchema = v.object({
  ok: v.boolean(),
  /** A tool's (or an observer's) result. */
  result: v.optional(v.object({
    name: Name,
    generation: Int,
    op: v.picklist(COLL_OPS),
    size: Int,
    data: v.optional(Bytes),
    values: v.optional(v.array(v.object({ path: Name, data: Bytes }))),
  })),
  missing: v.optional(v.array(Name)),
  missingCount: v.optional(Int),
});

/** What a member gets back from a generation that completed. */
export interface MemberResult {
  name: string;
  generation: number;
  op: CollOp;
  /** Members of the group. */
  size: number;
  /** broadcast, scatter, reduce (root), allreduce. */
  data?: Uint8Array;
  /** gather (root) and allgather: every member's value in rank order. */
  values?: { path: string; data: Uint8Array }[];
}

/**
 * Messages of the membership protocol (SWIM with Lifeguard's refinements) and their wire schemas.
 *
 * @module
 */
import * as v from "valibot";

/** Protocol of the long-lived membership streams between agents. */
export const SWIM_PROTOCOL = "/shoal/swim/1.0.0";

/** States of a member in a peer's view. */
export type MemberState = "alive" | "suspect" | "dead" | "left";

const Id = v.pipe(v.string(), v.maxLength(128));
const Text = v.pipe(v.string(), v.maxLength(1024));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000));
const Inc = v.pipe(v.number(), v.integer(), v.minValue(0));
const Seq = v.pipe(v.number(), v.integer(), v.minValue(0));

/** What an agent says about itself; travels with its `alive` updates. */
export const MemberMetaSchema = v.object({
  host: Text,
  slots: v.object({ total: Count, free: Count }),
  version: v.pipe(v.string(), v.maxLength(64)),
  load: v.pipe(v.number(), v.minValue(0)),
  startedAt: v.number(),
  gpus: Count,
  labels: v.pipe(
    v.record(v.pipe(v.string(), v.maxLength(128)), Text),
    v.check((r) => Object.keys(r).length <= 64),
  ),
  group: Text,
});
/** An agent's description of itself. */
export type MemberMeta = v.InferOutput<typeof MemberMetaSchema>;

/** One statement about a member: the unit of gossip and of push-pull. */
export const MemberUpdateSchema = v.object({
  id: Id,
  inc: Inc,
  st: v.picklist(["alive", "suspect", "dead", "left"]),
  /** Who suspects or declares dead (suspicion confirmations count distinct senders). */
  from: v.optional(Id),
  addrs: v.optional(v.pipe(v.array(Text), v.maxLength(32))),
  meta: v.optional(MemberMetaSchema),
});
/** A statement about a member. */
export type MemberUpdate = v.InferOutput<typeof MemberUpdateSchema>;

const Gossip = v.pipe(v.array(MemberUpdateSchema), v.maxLength(100_000));
const Digests = v.optional(
  v.pipe(
    v.record(v.pipe(v.string(), v.maxLength(32)), v.pipe(v.string(), v.maxLength(128))),
    v.check((r) => Object.keys(r).length <= 16),
  ),
);

/** Everything sent on a membership stream. */
export const SwimMessageSchema = v.variant("t", [
  /** A probe; `d` carries digests of replicated state, compared by the receiver. */
  v.object({ t: v.literal("ping"), seq: Seq, g: Gossip, d: Digests }),
  v.object({ t: v.literal("ack"), seq: Seq, g: Gossip, d: Digests }),
  /** Please probe `target` for me (indirect probe). */
  v.object({ t: v.literal("preq"), seq: Seq, target: Id }),
  /** Result of an indirect probe. */
  v.object({ t: v.literal("pack"), seq: Seq, ok: v.boolean() }),
  v.object({ t: v.literal("gossip"), g: Gossip }),
  /** Push-pull: the sender's whole view; `reply` says whether to answer with ours. */
  v.object({ t: v.literal("sync"), members: Gossip, reply: v.boolean() }),
  /** The sender is closing this link on purpose: not a failure. */
  v.object({ t: v.literal("unlink") }),
]);
/** A membership message. */
export type SwimMessage = v.InferOutput<typeof SwimMessageSchema>;

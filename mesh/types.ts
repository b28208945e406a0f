/**
 * Message shapes of the mesh: heartbeats, members, membership events. Schemas check everything read
 * from the wire.
 *
 * @module
 */
import * as v from "valibot";

/** Gossip topic of membership heartbeats and leave notices. */
export const MEMBERSHIP_TOPIC = "/shoal/membership/1";
/** Gossip topic of events (agent and task state changes, topology progress). */
export const EVENTS_TOPIC = "/shoal/events/1";
/** Request/response protocol returning a peer's membership view. */
export const VIEW_PROTOCOL = "/shoal/view/1.0.0";

const Id = v.pipe(v.string(), v.maxLength(128));
const Text = v.pipe(v.string(), v.maxLength(1024));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000));

/** What an agent announces about itself every heartbeat. */
export const HeartbeatSchema = v.object({
  type: v.literal("heartbeat"),
  id: Id,
  host: Text,
  addrs: v.pipe(v.array(Text), v.maxLength(32)),
  slots: v.object({ total: Count, free: Count }),
  version: v.pipe(v.string(), v.maxLength(64)),
  load: v.pipe(v.number(), v.minValue(0)),
  startedAt: v.number(),
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  gpus: v.optional(Count),
  labels: v.optional(v.record(v.pipe(v.string(), v.maxLength(128)), Text)),
  group: v.optional(Text),
  /** Digests of replicated state (e.g. `topologies`): a peer whose digest differs is asked for its copy. */
  digests: v.optional(v.record(v.pipe(v.string(), v.maxLength(32)), v.pipe(v.string(), v.maxLength(128)))),
});
/** A heartbeat as received. */
export type Heartbeat = v.InferOutput<typeof HeartbeatSchema>;

/** Sent once by an agent that shuts down cleanly. */
export const LeaveSchema = v.object({ type: v.literal("leave"), id: Id });

/** Anything on the membership topic. */
export const MembershipMessageSchema = v.variant("type", [HeartbeatSchema, LeaveSchema]);

/** States of a member in a peer's view. */
export type MemberState = "alive" | "suspect" | "dead" | "left";

/** A member as one peer sees it. */
export interface Member {
  id: string;
  host: string;
  addrs: string[];
  slots: { total: number; free: number };
  version: string;
  load: number;
  startedAt: number;
  gpus: number;
  labels: Record<string, string>;
  group: string;
  state: MemberState;
  /** Wall-clock time (ms since epoch) of the last heartbeat received. */
  lastSeen: number;
}

const MemberStateSchema = v.picklist(["alive", "suspect", "dead", "left"]);

/** Schema of one member on the wire. */
export const MemberSchema = v.object({
  id: Id,
  host: Text,
  addrs: v.array(Text),
  slots: v.object({ total: Count, free: Count }),
  version: v.string(),
  load: v.number(),
  startedAt: v.number(),
  gpus: Count,
  labels: v.record(v.string(), v.string()),
  group: v.string(),
  state: MemberStateSchema,
  lastSeen: v.number(),
});

/** Response of the view protocol. */
export const ViewSchema = v.object({ from: Id, members: v.array(MemberSchema) });
/** A peer's whole view. */
export type View = v.InferOutput<typeof ViewSchema>;

/** A change in the membership view. */
export type MembershipEvent =
  | { type: "agent:joined"; id: string; host: string; at: number }
  | { type: "agent:suspect"; id: string; host: string; at: number }
  | { type: "agent:alive"; id: string; host: string; at: number }
  | { type: "agent:dead"; id: string; host: string; at: number }
  | { type: "agent:left"; id: string; host: string; at: number };

/** Events gossiped on {@linkcode EVENTS_TOPIC}: a `type`, the peer that saw it, and free-form fields. */
export const GossipEventSchema = v.looseObject({
  type: v.pipe(v.string(), v.maxLength(64)),
  at: v.number(),
  by: Id,
});
/** An event as gossiped. */
export type GossipEvent = v.InferOutput<typeof GossipEventSchema>;

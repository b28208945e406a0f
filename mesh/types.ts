/**
 * Message shapes of the mesh: members, views, membership events. Schemas check everything read
 * from the wire.
 *
 * @module
 */
import * as v from "valibot";

/** Gossip topic of events (agent and task state changes, topology progress); their schema is `agent/wire/events.ts`. */
export const EVENTS_TOPIC = "/shoal/events/1";
/**
 * Gossip topic of the task events only tools follow (a task started, an exit it restarts from, the exits of a
 * topology stopped as a whole); same schema. Agents do not subscribe to it, so they do not forward it: a tool
 * hears an agent's only while connected to it (`mesh/follow.ts`). Broadcast to every agent, each of 10,000
 * starts reached all 100 agents of a mesh — 2.3 GB of gossip for one activation.
 */
export const TASK_EVENTS_TOPIC = "/shoal/task-events/1";
/** Request/response protocol returning a peer's membership view. */
export const VIEW_PROTOCOL = "/shoal/view/1.0.0";
/** Stream protocol for light peers: an agent's view, then each membership event as it happens. */
export const VIEW_WATCH_PROTOCOL = "/shoal/view-watch/1.0.0";

const Id = v.pipe(v.string(), v.maxLength(128));
const Text = v.pipe(v.string(), v.maxLength(1024));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000));

export type { MemberState } from "./swim_types.ts";
import type { MemberState } from "./swim_types.ts";

const MemberStateSchema = v.picklist(["alive", "suspect", "dead", "left"] satisfies MemberState[]);

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
  /** Wall-clock time (ms since epoch) this peer last heard of it. */
  lastSeen: v.number(),
  /** Its incarnation number (SWIM): raised only by the member itself, to refute suspicion. */
  incarnation: v.optional(v.number()),
});
/** A member as one peer sees it. */
export type Member = v.InferOutput<typeof MemberSchema>;

/** Response of the view protocol. */
export const ViewSchema = v.object({ from: Id, members: v.array(MemberSchema) });
/** A peer's whole view. */
export type View = v.InferOutput<typeof ViewSchema>;

/** Schema of a membership event on the wire (view watch). */
export const MembershipEventSchema = v.object({
  type: v.picklist(["agent:joined", "agent:suspect", "agent:alive", "agent:dead", "agent:left"]),
  id: Id,
  host: Text,
  at: v.number(),
});
/** A change in the membership view. */
export type MembershipEvent = v.InferOutput<typeof MembershipEventSchema>;

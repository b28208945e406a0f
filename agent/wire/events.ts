/**
 * The events gossiped on `EVENTS_TOPIC` (`mesh/types.ts`): one schema, {@linkcode EventSchema}, a variant of one
 * object per event type, from which {@linkcode ShoalEvent} is derived. Publishers build events of that type
 * and consumers narrow them by `switch (e.type)`.
 *
 * On the wire an agent sends its own events (`agent:*`, `env:claimed`) one per message and gathers the rest
 * into a `batch` (`event_batcher.ts`) whose members carry no `by`: the batch says who saw them.
 * {@linkcode EventMessageSchema} reads either and yields the events it carries, each with its `by`.
 *
 * Agents of different versions share a mesh, so an event this version does not know (a type added later, or
 * fields it cannot read) is dropped alone, quietly, and the rest of its batch still arrives; only a message
 * that is not an event at all (no string `type`, `at` and `by`) is dropped as malformed.
 *
 * @module
 */
import * as v from "valibot";
// Directly, not through env/mod.ts: that exports the environment service, which imports this area.
import {
  EnvRecordSchema,
  EnvStateSchema,
  EnvTaskStateSchema,
  EnvTransitionSchema,
} from "../../env/protocols.ts";
import { TaskStateSchema, TopologyRecordSchema } from "./protocols.ts";

const Peer = v.pipe(v.string(), v.maxLength(128));
const Name = v.pipe(v.string(), v.maxLength(1024));
const Text = v.pipe(v.string(), v.maxLength(16 * 1024));
const Int = v.pipe(v.number(), v.integer());
const Names = v.array(Name);

/** What a runner reports about one task (`RunnerEvent`), without where it runs. */
const taskStarted = {
  type: v.literal("task:started"),
  topologyId: Name,
  path: Name,
  id: Name,
  pid: Int,
  restarts: Int,
  at: v.number(),
};
const taskExited = {
  type: v.literal("task:exited"),
  topologyId: Name,
  path: Name,
  id: Name,
  pid: Int,
  code: v.nullable(Int),
  signal: v.nullable(Name),
  /** True when a trigger restarts it. */
  willRestart: v.boolean(),
  /** True when it exited because it was asked to stop. */
  stopped: v.boolean(),
  at: v.number(),
};
const taskFailed = {
  type: v.literal("task:failed"),
  topologyId: Name,
  path: Name,
  id: Name,
  reason: Text,
  at: v.number(),
};

/** Where a task event happened: the agent's peer ID and host, and the peer that gossiped it. */
const where = { agent: Peer, host: Name, by: Peer };

/** Every event, as consumers see it: its `type`, when it happened (`at`) and who gossiped it (`by`). */
export const EventSchema = v.variant("type", [
  // The agent's own, one per message. (Its start and end are membership events, `agent:joined`/`agent:left`.)
  v.object({ type: v.literal("agent:healthy"), at: v.number(), by: Peer, host: Name }),
  v.object({ type: v.literal("agent:unhealthy"), at: v.number(), by: Peer, host: Name, reason: Text }),
  /** The arbiter granted a take of an environment: peers apply it to the record they hold. */
  v.object({
    type: v.literal("env:claimed"),
    at: v.number(),
    by: Peer,
    envId: Name,
    /** The version it was granted on. */
    base: v.object({ seq: v.number(), updatedAt: v.number() }),
    epoch: v.number(),
    seq: v.number(),
    controller: EnvRecordSchema.entries.controller,
    runNumber: v.nullable(v.number()),
    updatedAt: v.number(),
  }),
  // Batched: tasks.
  v.object({ ...taskStarted, ...where }),
  v.object({ ...taskExited, ...where }),
  v.object({ ...taskFailed, ...where }),
  /** A task that also runs elsewhere after a heal was stopped here (`reconcile.ts`). */
  v.object({
    type: v.literal("task:duplicate-stopped"),
    at: v.number(),
    by: Peer,
    agent: Peer,
    topologyId: Name,
    path: Name,
    /** The agent whose instance stays. */
    keptOn: Peer,
    epoch: Int,
    rule: v.unwrap(TopologyRecordSchema.entries.reconcile),
  }),
  /** Leases whose topology record never came: their tasks were stopped (`orphan_leases.ts`). */
  v.object({
    type: v.literal("tasks:abandoned"),
    at: v.number(),
    by: Peer,
    agent: Peer,
    topologyId: Name,
    commander: Name,
    paths: Names,
  }),
  /** An agent died (or restarted): its tasks are being re-placed. */
  v.object({
    type: v.literal("tasks:lost"),
    at: v.number(),
    by: Peer,
    agent: Peer,
    topologyId: Name,
    paths: Names,
  }),
  /** A minority side stopped its tasks after too long (`failover.ts`). */
  v.object({ type: v.literal("tasks:fenced"), at: v.number(), by: Peer, agent: Peer, topologyId: Name }),
  v.object({
    type: v.literal("tasks:replaced"),
    at: v.number(),
    by: Peer,
    topologyId: Name,
    epoch: Int,
    agents: v.array(Peer),
    placed: v.array(v.object({ path: Name, agent: Peer, state: TaskStateSchema })),
    lost: Names,
    reasons: v.array(Text),
  }),
  /** This side of a partition sees too few agents to re-place tasks. */
  v.object({
    type: v.literal("topology:minority"),
    at: v.number(),
    by: Peer,
    topologyId: Name,
    sees: Int,
    of: Int,
    need: Int,
  }),
  // Batched: environments.
  /** A transition as remembered; its `by` is who asked for it (`user@host (peer)` or `agent:<peer>`). */
  v.object({
    type: v.literal("env:transition"),
    at: v.number(),
    envId: Name,
    ...EnvTransitionSchema.entries,
  }),
  v.object({
    type: v.literal("env:state"),
    at: v.number(),
    by: Peer,
    envId: Name,
    state: EnvStateSchema,
    runNumber: v.nullable(Int),
    reason: v.optional(Text),
  }),
  /** Tasks of an environment that reached a state together: `path` for one, `paths` for several. */
  v.object({
    type: v.literal("task:state"),
    at: v.number(),
    by: Peer,
    envId: Name,
    path: v.optional(Name),
    paths: v.optional(Names),
    state: EnvTaskStateSchema,
    reason: v.optional(Text),
  }),
]);

/** An event as consumers see it. */
export type ShoalEvent = v.InferOutput<typeof EventSchema>;
/** The event of one type. */
export type EventOf<T extends ShoalEvent["type"]> = Extract<ShoalEvent, { type: T }>;

/** Events a runner emits (`runner.ts`): the task events without `agent` and `host`, which the agent adds. */
export type RunnerEvent = Without<
  EventOf<"task:started" | "task:exited" | "task:failed">,
  "agent" | "host" | "by"
>;

type Without<E, K extends PropertyKey> = E extends unknown ? Omit<E, K> : never;
type Unsigned<E> = E extends { type: "env:transition" } ? E : Without<E, "by">;
/** An event as gathered into a batch: without `by`, which the batch carries (an `env:transition` keeps its own). */
export type BatchedEvent = Unsigned<ShoalEvent>;

/** A message on `EVENTS_TOPIC` as published: one event, or a batch of them. */
export type EventMessage = ShoalEvent | { type: "batch"; at: number; by: string; events: BatchedEvent[] };

/** Enough of a message to read its events; the events themselves are checked one by one. */
const EnvelopeSchema = v.looseObject({
  type: v.pipe(v.string(), v.maxLength(64)),
  at: v.number(),
  by: Peer,
  events: v.optional(v.array(v.unknown())),
});

function eventsOf(m: v.InferOutput<typeof EnvelopeSchema>): ShoalEvent[] {
  if (m.type !== "batch") return v.is(EventSchema, m) ? [m] : [];
  const out: ShoalEvent[] = [];
  for (const x of m.events ?? []) {
    if (typeof x !== "object" || x === null) continue;
    const e = { by: m.by, ...x };
    if (v.is(EventSchema, e)) out.push(e);
  }
  return out;
}

/**
 * Schema of a message on `EVENTS_TOPIC`; its output is the events the message carries (those of a
 * batch with the batch's `by`), without the ones this version cannot read.
 *
 * @example
 * ```ts
 * node.subscribe(EVENTS_TOPIC, EventMessageSchema, (events) => {
 *   for (const e of events) if (e.type === "task:exited") console.log(e.path, e.code);
 * });
 * ```
 */
export const EventMessageSchema = v.pipe(EnvelopeSchema, v.transform(eventsOf));

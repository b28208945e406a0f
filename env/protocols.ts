/**
 * Wire shapes of environments: the replicated record, its gossip topic and the request protocol every
 * agent serves (the arbiter — the alive agent with the lowest peer ID — decides claims).
 *
 * @module
 */
import * as v from "valibot";
import { ENV_EVENTS } from "./fsm.ts";

/** Gossip topic of environment records. */
export const ENV_TOPIC = "/shoal/env/1";
/** Request protocol: list records, claim an environment, write it, raise a task's error. */
export const ENV_PROTOCOL = "/shoal/env/1.0.0";

const Name = v.pipe(v.string(), v.maxLength(1024));
const Text = v.pipe(v.string(), v.maxLength(16 * 1024));
const Int = v.pipe(v.number(), v.integer(), v.minValue(0));
/** An environment state. */
export const EnvStateSchema = v.picklist(["STANDBY", "DEPLOYED", "CONFIGURED", "RUNNING", "ERROR", "DONE"]);
const State = EnvStateSchema;
// The events are the state machine's own list, not a copy of it.
const Event = v.picklist(ENV_EVENTS);
/** A task's state within an environment. */
export const EnvTaskStateSchema = v.picklist([
  "STANDBY",
  "CONFIGURED",
  "RUNNING",
  "ERROR",
  "DONE",
  "INVARIANT",
]);
const TaskState = EnvTaskStateSchema;
/**
 * How a task takes part: `direct` answers every transition through the task API, `basic` runs while
 * RUNNING, `hook` runs once at its trigger (its exit code is the result), `none` runs from DEPLOY to EXIT.
 */
export const ControlModeSchema = v.picklist(["direct", "basic", "hook", "none"]);
const Mode = ControlModeSchema;
/** A task as the environment sees it. */
export const EnvTaskSchema = v.object({
  state: TaskState,
  mode: Mode,
  critical: v.boolean(),
  reason: v.optional(Text),
});
/** One transition as remembered (`EnvTransition`). */
export const EnvTransitionSchema = v.object({
  event: Event,
  from: State,
  to: State,
  ok: v.boolean(),
  /** Who asked: `user@host (peer)`, or `agent:<peer>` for one the mesh applied itself. */
  by: Name,
  startedAt: v.number(),
  ms: v.number(),
  reason: v.optional(Text),
  runNumber: v.optional(Int),
});

/** One rule of an environment file: the first rule whose pattern matches a task path applies. */
export const ControlRuleSchema = v.object({
  /** Regular expression on the whole runtime path. */
  tasks: Name,
  mode: Mode,
  /** A failing or crashing critical task sends the environment to ERROR (default: true but for `none`). */
  critical: v.boolean(),
  /** Hooks only: `before_EVENT`, `leave_STATE`, `enter_STATE` or `after_EVENT`, with an optional `±weight`. */
  trigger: v.optional(Name),
  /** Hooks only: longest run in ms. */
  timeoutMs: v.optional(Int),
});

/** The control part of an environment, as replicated. */
export const EnvControlSchema = v.object({
  rules: v.array(ControlRuleSchema),
  /** event → ms a direct task has to answer (`default` for the others). */
  timeoutsMs: v.record(v.string(), Int),
});

/** An environment record as it travels; the highest (epoch, seq) wins. */
export const EnvRecordSchema = v.object({
  id: Name,
  /** The topology it runs (same ID). */
  topologyId: Name,
  file: Name,
  state: State,
  /** Raised by every claim (a controller taking the environment, or the mesh raising ERROR). */
  epoch: Int,
  /** Raised by every write within an epoch. */
  seq: Int,
  /** The current run's number while RUNNING (and after, until the next START_ACTIVITY), else null. */
  runNumber: v.nullable(Int),
  control: EnvControlSchema,
  tasks: v.record(v.string(), EnvTaskSchema),
  /** Set while a controller applies an event; past `deadline` the mesh calls it lost. */
  controller: v.nullable(v.object({
    by: Name,
    peer: Name,
    event: Event,
    startedAt: v.number(),
    deadline: v.number(),
  })),
  history: v.array(EnvTransitionSchema),
  reason: v.optional(Text),
  destroyed: v.boolean(),
  createdAt: v.number(),
  updatedAt: v.number(),
});

/** Request of {@linkcode ENV_PROTOCOL}. */
export const EnvRequestSchema = v.variant("op", [
  v.object({ op: v.literal("list") }),
  /**
   * Take the environment: accepted when the arbiter's record has epoch `expectEpoch` (0: none yet) and no
   * live controller; `record` then carries `expectEpoch + 1`. `allocateRun` gives it the next run number.
   */
  v.object({
    op: v.literal("claim"),
    expectEpoch: Int,
    allocateRun: v.optional(v.boolean()),
    record: EnvRecordSchema,
  }),
  /** Write within the epoch one holds. */
  v.object({ op: v.literal("put"), record: EnvRecordSchema }),
  /**
   * Take the environment for `event` in one round trip: granted when its state allows the event and no
   * live controller holds it; the arbiter sets the controller and its deadline (a new epoch, a run number
   * for START_ACTIVITY) and answers with the record and, when it has hooks, its topology record.
   */
  v.object({
    op: v.literal("take"),
    id: Name,
    event: Event,
    by: Name,
    peer: Name,
    /** Sent on by an agent that is not the arbiter: decided where it arrives, never sent on again. */
    forwarded: v.optional(v.boolean()),
  }),
  /**
   * The outcome of a transition, within the epoch one holds: only what changed — the state, the tasks whose
   * state changed, the history entry — applied to the arbiter's record (the controller is let go).
   */
  v.object({
    op: v.literal("patch"),
    id: Name,
    epoch: Int,
    state: State,
    /** Every task of these modes takes this state (its reason dropped), before `tasks` apply. */
    bulk: v.optional(v.object({ modes: v.array(Mode), state: TaskState })),
    tasks: v.record(v.string(), EnvTaskSchema),
    entry: EnvTransitionSchema,
    reason: v.nullable(Text),
    destroyed: v.optional(v.boolean()),
  }),
  /** A task raised GO_ERROR (sent by its agent to the arbiter). */
  v.object({ op: v.literal("task-error"), topologyId: Name, path: Name, message: Text }),
]);
/** A request of {@linkcode ENV_PROTOCOL}. */
export type EnvRequest = v.InferOutput<typeof EnvRequestSchema>;

/** Response of {@linkcode ENV_PROTOCOL}. */
export const EnvResponseSchema = v.object({
  ok: v.boolean(),
  reason: v.optional(Text),
  record: v.optional(EnvRecordSchema),
  records: v.optional(v.array(EnvRecordSchema)),
  /** `patch`: the record's new version, which the controller applies to its copy. */
  head: v.optional(v.object({ epoch: Int, seq: Int, updatedAt: v.number() })),
  /** `take` of an environment with hooks: its topology record (the hooks' paths come from it). */
  topology: v.optional(v.unknown()),
  /** `take` refused because the state does not allow the event. */
  refused: v.optional(v.object({ state: State })),
  /** `take` of an unknown environment: the live ones. */
  live: v.optional(v.array(Name)),
  /** `take` sent on to the arbiter by the agent asked: where to send the `patch` (peer ID or multiaddr). */
  arbiter: v.optional(Text),
});
/** A response of {@linkcode ENV_PROTOCOL}. */
export type EnvResponse = v.InferOutput<typeof EnvResponseSchema>;

/**
 * A controller's transition, sent for it by the agent it asks (as a custom command to the environment's
 * direct tasks), streamed back answer by answer: frames of `{answers}` as they come, then one `{done}`.
 */
export const ENV_TRANSITION_PROTOCOL = "/shoal/env/transition/1.0.0";

const Bytes = v.custom<Uint8Array>((x) => x instanceof Uint8Array, "expected bytes");

/** Request of {@linkcode ENV_TRANSITION_PROTOCOL}: the command's payload, how many answers, how long. */
export const EnvTransitionRequestSchema = v.object({
  topologyId: Name,
  payload: Bytes,
  waitReplies: Int,
  timeoutMs: v.pipe(v.number(), v.minValue(0), v.maxValue(3_600_000)),
});

/** One frame of {@linkcode ENV_TRANSITION_PROTOCOL}'s answer stream. */
export const EnvTransitionFrameSchema = v.union([
  v.object({ answers: v.array(v.object({ path: Name, payload: Bytes })) }),
  v.object({ done: v.literal(true), timedOut: v.boolean() }),
]);
/** A frame of the answer stream. */
export type EnvTransitionFrame = v.InferOutput<typeof EnvTransitionFrameSchema>;

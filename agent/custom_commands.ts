/**
 * Custom commands between tasks, tools and agents, routed by DDS conditions (see `conditions.ts`): empty =
 * every task of the topology but the sender, a task ID, an exact task path, or else a regular expression on
 * the path; `tool`/`tool:<peer>` for listening tools; `agent`/`agent:<peer or host>` for agents themselves.
 * Replies go back to the sender's agent. Commands and replies are coalesced into one gossip message per short
 * tick, so a thousand replies arriving at once cost a handful of messages. Payloads are bytes (DDS issue
 * #283).
 *
 * A command carries the topology it belongs to; one addressed to agents may carry none (`topologyId` empty),
 * so that tools reach agents while no topology is active.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import * as v from "valibot";
import { EventHub, handleRequests, type MeshNode } from "../mesh/mod.ts";
import {
  addressesAgents,
  matchesAgent,
  matchesCondition,
  matchesTool,
  parseCondition,
  type RoutableTask,
} from "./conditions.ts";

export type { RoutableTask } from "./conditions.ts";

/** Gossip topic of commands and replies. */
export const CMD_TOPIC = "/shoal/cmd/1";
/** Request protocol: a tool asks an agent to send a command for it and gather the replies. */
export const CMD_PROTOCOL = "/shoal/cmd/1.0.0";

/** Largest payload accepted, in bytes. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

const Name = v.pipe(v.string(), v.maxLength(1024));
const Bytes = v.custom<Uint8Array>((x) => x instanceof Uint8Array, "expected bytes");
const Payload = v.pipe(Bytes, v.check((b) => b.byteLength <= MAX_PAYLOAD_BYTES, "payload too large"));
const SenderSchema = v.object({
  id: v.pipe(v.string(), v.maxLength(128)),
  path: Name,
  /** Set by agents: the host name they announce. */
  host: v.optional(v.pipe(v.string(), v.maxLength(255))),
});

/**
 * Who sent a command or reply: a task (its ID and path), a tool (`tool:<peer>`, path `""`) or an agent
 * (`agent:<peer>`, path `""`, with its `host`).
 */
export type CmdSender = v.InferOutput<typeof SenderSchema>;

/** Only commands addressed to agents may leave out the topology. */
function topologyRule<T extends { topologyId: string; condition: string }>() {
  return v.check<T, string>(
    (c) => c.topologyId !== "" || addressesAgents(c.condition),
    "a command to tasks or tools needs a topologyId",
  );
}

const CmdSchema = v.pipe(
  v.object({
    type: v.literal("cmd"),
    id: Name,
    topologyId: Name,
    condition: Name,
    /** Agent that waits for the replies. */
    origin: Name,
    sender: SenderSchema,
    payload: Payload,
  }),
  topologyRule(),
);
const ReplySchema = v.object({
  type: v.literal("reply"),
  to: Name,
  target: Name,
  sender: SenderSchema,
  payload: Payload,
});
const CmdBatchSchema = v.object({ by: v.string(), items: v.array(v.union([CmdSchema, ReplySchema])) });

/** A command as delivered to a task, tool or agent. */
export type Command = v.InferOutput<typeof CmdSchema>;
/** A reply as gathered for the sender. */
export type Reply = v.InferOutput<typeof ReplySchema>;

/** Request of {@linkcode CMD_PROTOCOL}. */
export const CmdRequestSchema = v.pipe(
  v.object({
    /** The topology; may be empty (or left out) when `condition` addresses agents. */
    topologyId: v.optional(Name, ""),
    condition: Name,
    payload: Payload,
    waitReplies: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    timeoutMs: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(3_600_000))),
  }),
  topologyRule(),
);
/** Response of {@linkcode CMD_PROTOCOL}. */
export const CmdResponseSchema = v.object({
  id: v.string(),
  replies: v.array(v.object({ sender: SenderSchema, payload: Bytes })),
  timedOut: v.boolean(),
});

/** What {@linkcode CustomCommands} needs. */
export interface CustomCommandsInit {
  node: MeshNode;
  /** The tasks running here. */
  localTasks: () => Iterable<RoutableTask>;
  /** The runtime paths of a topology, to tell an exact path from a regex. */
  topologyPaths?: (topologyId: string) => ReadonlySet<string> | undefined;
  /** The host name this agent announces, for `agent:<host>` (default: match by peer ID only). */
  host?: string;
  /** Coalescing tick (default 2 ms). */
  tickMs?: number;
}

interface Waiter {
  replies: { sender: CmdSender; payload: Uint8Array }[];
  want: number;
  done: () => void;
}

/** Routing of custom commands on one agent. */
export class CustomCommands implements AsyncDisposable {
  /** Commands for tasks of this agent: `{task, command}`. */
  readonly delivered: EventHub<{ task: RoutableTask; command: Command }> = new EventHub();
  /** Commands addressed to this agent itself (`agent`, `agent:<its peer ID or host>`). */
  readonly toAgent: EventHub<Command> = new EventHub();
  readonly #init: CustomCommandsInit;
  readonly #waiters = new Map<string, Waiter>();
  /** Command ID → origin agent, for replies (kept for a while). */
  readonly #origins = new Map<string, { origin: string; at: number }>();
  #pending: (Command | Reply)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #off: (() => void) | undefined;

  constructor(init: CustomCommandsInit) {
    this.#init = init;
  }

  async start(): Promise<void> {
    const me = this.#init.node.peerId;
    this.#off = this.#init.node.subscribe(CMD_TOPIC, CmdBatchSchema, (batch) => {
      for (const item of batch.items) {
        if (item.type === "cmd") this.#route(item);
        else if (item.target === me) this.#gather(item);
      }
    });
    await handleRequests(this.#init.node, CMD_PROTOCOL, {
      schema: CmdRequestSchema,
      maxBytes: MAX_PAYLOAD_BYTES + 64 * 1024,
      handler: (req, from) =>
        this.send({
          topologyId: req.topologyId,
          condition: req.condition,
          payload: req.payload,
          sender: { id: `tool:${from}`, path: "" },
        }, {
          waitReplies: req.waitReplies ?? 0,
          timeoutMs: req.timeoutMs ?? 0,
        }),
    });
  }

  /**
   * Sends a command; resolves once `waitReplies` replies came back or `timeoutMs` passed (at once when
   * `waitReplies` is 0). Throws `RangeError` for a malformed condition, a missing topology (only commands
   * to agents may have none) or a payload that is too large.
   */
  async send(
    cmd: { topologyId: string; condition: string; payload: Uint8Array; sender: CmdSender },
    options: { waitReplies?: number; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<v.InferOutput<typeof CmdResponseSchema>> {
    if (cmd.payload.byteLength > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`Payload of ${cmd.payload.byteLength} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    }
    const target = parseCondition(cmd.condition);
    if (cmd.topologyId === "" && target.kind !== "agents") {
      throw new RangeError(
        `Condition "${cmd.condition}" addresses tasks or tools, which need a topology; name one (--id)`,
      );
    }
    const id = randomUUID();
    const message: Command = { type: "cmd", id, origin: this.#init.node.peerId, ...cmd };
    const want = options.waitReplies ?? 0;
    const waiter: Waiter = { replies: [], want, done: () => {} };
    const finished = new Promise<void>((resolve) => (waiter.done = resolve));
    if (want > 0) this.#waiters.set(id, waiter);
    this.#route(message);
    this.#queue(message);
    if (want === 0) return { id, replies: [], timedOut: false };
    // A plain timer, cleared on the last reply: an AbortSignal.timeout would hold the waiter (and its
    // replies) until it fired, `timeoutMs` later, for every command answered long before.
    const stop = () => waiter.done();
    const timer = setTimeout(stop, options.timeoutMs || 30_000);
    options.signal?.addEventListener("abort", stop, { once: true });
    if (options.signal?.aborted) stop();
    await finished;
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", stop);
    this.#waiters.delete(id);
    return { id, replies: waiter.replies, timedOut: waiter.replies.length < want };
  }

  /** Replies to command `to` (delivered here earlier) on behalf of `sender`. */
  reply(to: string, sender: CmdSender, payload: Uint8Array): void {
    const origin = this.#origins.get(to)?.origin;
    if (!origin) throw new RangeError(`No command "${to}" was delivered here; nothing to reply to`);
    if (payload.byteLength > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`Payload of ${payload.byteLength} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    }
    const reply: Reply = { type: "reply", to, target: origin, sender, payload };
    if (origin === this.#init.node.peerId) this.#gather(reply);
    else this.#queue(reply);
  }

  #route(cmd: Command): void {
    if (addressesAgents(cmd.condition)) {
      if (!matchesAgent(cmd.condition, { peerId: this.#init.node.peerId, host: this.#init.host ?? "" })) {
        return;
      }
      this.#remember(cmd.id, cmd.origin);
      this.toAgent.emit(cmd);
      return;
    }
    const paths = this.#init.topologyPaths?.(cmd.topologyId);
    let any = false;
    for (const task of this.#init.localTasks()) {
      if (task.topologyId !== cmd.topologyId) continue;
      if (!matchesCondition(cmd.condition, task, cmd.sender, paths)) continue;
      any = true;
      this.delivered.emit({ task, command: cmd });
    }
    if (any) this.#remember(cmd.id, cmd.origin);
  }

  #remember(id: string, origin: string): void {
    const now = Date.now();
    this.#origins.set(id, { origin, at: now });
    if (this.#origins.size > 10_000) {
      for (const [k, o] of this.#origins) {
        if (now - o.at < 600_000 && this.#origins.size <= 10_000) break;
        this.#origins.delete(k);
      }
    }
  }

  #gather(reply: Reply): void {
    const w = this.#waiters.get(reply.to);
    if (!w) return;
    w.replies.push({ sender: reply.sender, payload: reply.payload });
    if (w.replies.length >= w.want) w.done();
  }

  #queue(item: Command | Reply): void {
    this.#pending.push(item);
    this.#timer ??= setTimeout(() => void this.flush(), this.#init.tickMs ?? 2);
  }

  /** Publishes queued commands and replies now. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const all = this.#pending;
    this.#pending = [];
    // Messages stay well under gossipsub's 4 MiB limit even with 1 MiB payloads.
    let items: (Command | Reply)[] = [];
    let bytes = 0;
    const publish = async () => {
      if (items.length === 0) return;
      const batch = items;
      items = [];
      bytes = 0;
      await this.#init.node.publish(CMD_TOPIC, { by: this.#init.node.peerId, items: batch }).catch(() => {});
    };
    for (const item of all) {
      const size = item.payload.byteLength + 512;
      if (bytes + size > 2 * 1024 * 1024) await publish();
      items.push(item);
      bytes += size;
    }
    await publish();
  }

  async stop(): Promise<void> {
    this.#off?.();
    for (const w of this.#waiters.values()) w.done();
    await this.flush();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * A tool's (light peer's) side of commands: a listening tool gets the commands of `topologyId` whose
 * condition is empty, `tool`, or `tool:<its peer ID>` (never its own; never those to agents). Returns a
 * function that stops.
 */
export function listenAsTool(
  node: MeshNode,
  topologyId: string,
  handler: (cmd: Command) => void,
): () => void {
  const me = node.peerId;
  return node.subscribe(CMD_TOPIC, CmdBatchSchema, (batch) => {
    for (const item of batch.items) {
      if (item.type !== "cmd" || item.topologyId !== topologyId || item.sender.id === `tool:${me}`) continue;
      if (matchesTool(item.condition, me)) handler(item);
    }
  });
}

/** A tool's reply to a command it received with {@linkcode listenAsTool}. */
export async function replyAsTool(node: MeshNode, cmd: Command, payload: Uint8Array): Promise<void> {
  const reply: Reply = {
    type: "reply",
    to: cmd.id,
    target: cmd.origin,
    sender: { id: `tool:${node.peerId}`, path: "" },
    payload,
  };
  await node.publish(CMD_TOPIC, { by: node.peerId, items: [reply] });
}

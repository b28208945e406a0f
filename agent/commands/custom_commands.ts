/**
 * Custom commands between tasks, tools and agents, routed by DDS conditions (see `conditions.ts`): empty =
 * every task of the topology but the sender, a task ID, an exact task path, or else a regular expression on
 * the path; `tool`/`tool:<peer>` for listening tools; `agent`/`agent:<peer or host>` for agents themselves.
 * Payloads are bytes (DDS issue #283).
 *
 * The path of a command and its reply. The sender's agent (the origin; a tool's command enters at the agent
 * it asks over {@linkcode CMD_PROTOCOL}) works out who holds the addressees:
 * - a task ID, an exact path or a regex: the agents the topology's replicated placement puts the matching
 *   tasks on; the command goes to each of them straight, over one long-lived stream per agent
 *   ({@linkcode CMD_DIRECT_PROTOCOL}, `mesh/direct.ts`), or is handled in place when that is the origin;
 * - `agent:<peer ID>`: that agent, the same way;
 * - everything else is a broadcast by condition and goes by gossip ({@linkcode CMD_TOPIC}): the empty
 *   condition and `tool…` (listening tools are known to no agent), `agent` and `agent:<host>` (no agent
 *   knows every other's host for sure), a topology whose placement this agent does not hold yet, and a
 *   task ID when the topology cannot be expanded here. Gossiped commands are coalesced, several per
 *   message per short tick.
 *
 * An agent that receives a command straight but holds none of its addressees (its placement was stale: the
 * task moved, or is still starting) gossips it once, so that a stale view costs a broadcast, not the command;
 * agents that got it both ways deliver it once (by command ID). A direct send that fails falls back to
 * gossip the same way.
 *
 * Every reply goes straight back to the origin agent over the same direct streams (a tool's too), and only
 * by gossip when that fails; the origin hands the replies to the waiting sender. Nothing here is periodic:
 * the cost is per command.
 *
 * A command carries the topology it belongs to; one addressed to agents may carry none (`topologyId` empty),
 * so that tools reach agents while no topology is active.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import * as v from "valibot";
import { peerIdFromString } from "@libp2p/peer-id";
import { Coalescer, Direct, EventHub, handleRequests, type MeshNode } from "../../mesh/mod.ts";
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
/** Direct messages: commands to the agents holding their addressees, replies to the origin. */
export const CMD_DIRECT_PROTOCOL = "/shoal/cmd/direct/1.0.0";

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
const ItemSchema = v.union([CmdSchema, ReplySchema]);
const CmdBatchSchema = v.object({ by: v.string(), items: v.array(ItemSchema) });

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

/** Where a topology's tasks are placed, as this agent's replica of its desired state says. */
export interface TaskPlaces {
  /** Runtime task path → the agents it is placed on. */
  agentsOf: ReadonlyMap<string, readonly string[]>;
  /** The path of a DDS task ID; undefined when unknown here (the command is gossiped then). */
  pathOfId?: (id: string) => string | undefined;
}

/** What {@linkcode CustomCommands} needs. */
export interface CustomCommandsInit {
  node: MeshNode;
  /** The tasks running here. */
  localTasks: () => Iterable<RoutableTask>;
  /**
   * Where a topology's tasks are, to send commands straight to their agents and to tell an exact path from
   * a regex; without it (or for a topology it does not know), commands to tasks are gossiped.
   */
  places?: (topologyId: string) => TaskPlaces | undefined;
  /** The host name this agent announces, for `agent:<host>` (default: match by peer ID only). */
  host?: string;
  /** Coalescing tick (default 2 ms). */
  tickMs?: number;
}

interface Waiter {
  replies: { sender: CmdSender; payload: Uint8Array }[];
  want: number;
  done: () => void;
  onReply?: (reply: { sender: CmdSender; payload: Uint8Array }) => void;
}

/** True when `s` reads as a libp2p peer ID (so `agent:<s>` names one agent, not a host). */
function isPeerId(s: string): boolean {
  if (!/^(12D3KooW|Qm|16Uiu2)[1-9A-HJ-NP-Za-km-z]+$/.test(s)) return false;
  try {
    peerIdFromString(s);
    return true;
  } catch {
    return false;
  }
}

/** The direct-message link of commands and replies on `node` (serving it once started, if it handles). */
function cmdDirect(node: MeshNode, onMessage?: (item: Command | Reply) => void): Direct<typeof ItemSchema> {
  return new Direct({
    node,
    protocol: CMD_DIRECT_PROTOCOL,
    schema: ItemSchema,
    ...(onMessage ? { onMessage } : {}),
    sizeOf: (item) => item.payload.byteLength + 512,
  });
}

/** Routing of custom commands on one agent. */
export class CustomCommands implements AsyncDisposable {
  /** Commands for tasks of this agent: `{task, command}`. */
  readonly delivered: EventHub<{ task: RoutableTask; command: Command }> = new EventHub();
  /** Commands addressed to this agent itself (`agent`, `agent:<its peer ID or host>`). */
  readonly toAgent: EventHub<Command> = new EventHub();
  readonly #init: CustomCommandsInit;
  readonly #waiters = new Map<string, Waiter>();
  /** Command ID → origin agent, of the commands delivered here: for replies, and to deliver each once. */
  readonly #origins = new Map<string, { origin: string; at: number }>();
  readonly #gossip: Coalescer<Command | Reply>;
  #off: (() => void) | undefined;
  #direct: Direct<typeof ItemSchema> | undefined;

  constructor(init: CustomCommandsInit) {
    this.#init = init;
    this.#gossip = new Coalescer<Command | Reply>({
      publish: (items) => init.node.publish(CMD_TOPIC, { by: init.node.peerId, items }),
      // Gossip is best effort: a publish fails only while the node stops, and the senders' replies time out.
      onError: () => {},
      windowMs: init.tickMs ?? 2,
      // Messages stay well under gossipsub's 4 MiB limit even with 1 MiB payloads.
      sizeOf: (item) => item.payload.byteLength + 512,
      maxBytes: 2 * 1024 * 1024,
    });
  }

  async start(): Promise<void> {
    const me = this.#init.node.peerId;
    this.#off = this.#init.node.subscribe(CMD_TOPIC, CmdBatchSchema, (batch) => {
      for (const item of batch.items) {
        if (item.type === "cmd") this.#route(item);
        else if (item.target === me) this.#gather(item);
      }
    });
    this.#direct = cmdDirect(this.#init.node, (item) => {
      if (item.type === "cmd") this.#receiveDirect(item);
      else if (item.target === me) this.#gather(item);
    });
    await this.#direct.start();
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
   * to agents may have none) or a payload that is too large. `onReply` sees each reply as it comes.
   */
  async send(
    cmd: { topologyId: string; condition: string; payload: Uint8Array; sender: CmdSender },
    options: {
      waitReplies?: number;
      timeoutMs?: number;
      signal?: AbortSignal;
      onReply?: (reply: { sender: CmdSender; payload: Uint8Array }) => void;
    } = {},
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
    const waiter: Waiter = {
      replies: [],
      want,
      done: () => {},
      ...(options.onReply ? { onReply: options.onReply } : {}),
    };
    const finished = new Promise<void>((resolve) => (waiter.done = resolve));
    if (want > 0) this.#waiters.set(id, waiter);
    this.#dispatch(message);
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
    else this.#sendDirect(origin, reply);
  }

  /** Sends a new command on its way: straight to the agents holding its addressees, else by gossip. */
  #dispatch(cmd: Command): void {
    const agents = this.#holders(cmd);
    if (!agents) {
      this.#route(cmd);
      this.#queue(cmd);
      return;
    }
    for (const agent of agents) {
      if (agent === this.#init.node.peerId) this.#receiveDirect(cmd);
      else this.#sendDirect(agent, cmd);
    }
  }

  /** Over the agent's direct stream; by gossip when that fails. */
  #sendDirect(peer: string, item: Command | Reply): void {
    const direct = this.#direct;
    if (!direct) return this.#queue(item);
    direct.send(peer, item).catch(() => this.#queue(item));
  }

  /** A command sent here straight: one that reaches nobody here is gossiped (the sender's view was stale). */
  #receiveDirect(cmd: Command): void {
    if (!this.#route(cmd)) this.#queue(cmd);
  }

  /**
   * The agents to send `cmd` to straight, from the topology's placement; undefined when it goes by gossip
   * (see the module doc), empty when it addresses nobody (a malformed regex).
   */
  #holders(cmd: Command): string[] | undefined {
    const target = parseCondition(cmd.condition);
    if (target.kind === "agents") {
      return target.selector !== undefined && isPeerId(target.selector) ? [target.selector] : undefined;
    }
    if (target.kind === "tools" || cmd.condition === "") return undefined;
    const places = this.#init.places?.(cmd.topologyId);
    if (!places) return undefined;
    let paths: string[];
    if (/^\d+$/.test(cmd.condition)) {
      const path = places.pathOfId?.(cmd.condition);
      if (path === undefined) return undefined;
      paths = [path];
    } else if (places.agentsOf.has(cmd.condition)) paths = [cmd.condition];
    else {
      let re: RegExp;
      try {
        re = new RegExp(cmd.condition);
      } catch {
        return [];
      }
      paths = [...places.agentsOf.keys()].filter((p) => re.test(p));
    }
    const agents = new Set(paths.flatMap((p) => places.agentsOf.get(p) ?? []));
    // Nothing placed matches: perhaps a placement this agent has not heard of yet.
    return agents.size > 0 ? [...agents] : undefined;
  }

  /** Delivers `cmd` to whom it addresses here; false when that is nobody. Each command is delivered once. */
  #route(cmd: Command): boolean {
    if (this.#origins.has(cmd.id)) return true;
    if (addressesAgents(cmd.condition)) {
      if (!matchesAgent(cmd.condition, { peerId: this.#init.node.peerId, host: this.#init.host ?? "" })) {
        return false;
      }
      this.#remember(cmd.id, cmd.origin);
      this.toAgent.emit(cmd);
      return true;
    }
    const paths = this.#init.places?.(cmd.topologyId)?.agentsOf;
    let any = false;
    for (const task of this.#init.localTasks()) {
      if (task.topologyId !== cmd.topologyId) continue;
      if (!matchesCondition(cmd.condition, task, cmd.sender, paths)) continue;
      if (!any) this.#remember(cmd.id, cmd.origin);
      any = true;
      this.delivered.emit({ task, command: cmd });
    }
    return any;
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
    const r = { sender: reply.sender, payload: reply.payload };
    w.replies.push(r);
    w.onReply?.(r);
    if (w.replies.length >= w.want) w.done();
  }

  #queue(item: Command | Reply): void {
    this.#gossip.add(item);
  }

  /** Publishes the commands (and fallen-back replies) queued for gossip now. */
  flush(): Promise<void> {
    return this.#gossip.flush();
  }

  async stop(): Promise<void> {
    this.#off?.();
    for (const w of this.#waiters.values()) w.done();
    await this.#gossip.stop();
    await this.#direct?.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** A listening tool: see {@linkcode listenAsTool}. */
export interface ToolListener extends AsyncDisposable {
  /** Replies to a command it heard, straight to the command's origin agent (by gossip if that fails). */
  reply(cmd: Command, payload: Uint8Array): Promise<void>;
  /** Stops listening and closes the reply streams. */
  close(): Promise<void>;
}

/**
 * A tool's (light peer's) side of commands: a listening tool gets the commands of `topologyId` whose
 * condition is empty, `tool`, or `tool:<its peer ID>` (never its own; never those to agents), by gossip.
 */
export function listenAsTool(
  node: MeshNode,
  topologyId: string,
  handler: (cmd: Command) => void,
): ToolListener {
  const me = node.peerId;
  const direct = cmdDirect(node);
  const off = node.subscribe(CMD_TOPIC, CmdBatchSchema, (batch) => {
    for (const item of batch.items) {
      if (item.type !== "cmd" || item.topologyId !== topologyId || item.sender.id === `tool:${me}`) continue;
      if (matchesTool(item.condition, me)) handler(item);
    }
  });
  const close = async () => {
    off();
    await direct.stop();
  };
  return {
    async reply(cmd, payload) {
      const reply: Reply = {
        type: "reply",
        to: cmd.id,
        target: cmd.origin,
        sender: { id: `tool:${me}`, path: "" },
        payload,
      };
      await direct.send(cmd.origin, reply).catch(() => node.publish(CMD_TOPIC, { by: me, items: [reply] }));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

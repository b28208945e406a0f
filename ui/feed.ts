/**
 * The dashboard's view of the mesh, as a light peer: membership events (followed from an agent), the
 * event, topology and key-value gossip topics, and requests through an alive agent. It fans what it hears
 * out to the pages connected by server-sent events; it never polls the mesh.
 *
 * @module
 */
import {
  CMD_PROTOCOL,
  CmdResponseSchema,
  EventMessageSchema,
  KV_TOPIC,
  KvBatchSchema,
  type KvEntry,
  listEntries,
  LogChunkSchema,
  LOGS_PROTOCOL,
  matchesAgent,
  matchesCondition,
  parseCondition,
  type ShoalEvent,
  TOPOLOGIES_TOPIC,
  type TopologyRecord,
  TopologyRecordSchema,
} from "../agent/mod.ts";
import { type CommanderInit, fetchMembers, fetchTasks, fetchTopologies } from "../commander/mod.ts";
import { lpStream } from "@libp2p/utils";
import {
  decode,
  encode,
  EventHub,
  EVENTS_TOPIC,
  followEveryAgent,
  type Member,
  type Membership,
  type MembershipEvent,
  type MeshNode,
  request,
  startMembership,
  TASK_EVENTS_TOPIC,
} from "../mesh/mod.ts";
import { METRICS_LABEL } from "../metrics/mod.ts";
import { EnvFeed, type EnvView } from "./envs.ts";
import { expandTaskStates } from "../env/mod.ts";

/** What the feed pushes to pages. */
export type FeedMessage =
  | { kind: "event"; event: ShoalEvent | MembershipEvent }
  | { kind: "agents"; agents: AgentView[] }
  | { kind: "topology"; topology: TopologyView }
  | { kind: "kv"; entries: KvEntry[] }
  | { kind: "env"; env: EnvView };

/** An agent as the dashboard shows it. */
export interface AgentView {
  id: string;
  host: string;
  state: string;
  slots: { total: number; free: number };
  load: number;
  version: string;
  startedAt: number;
  lastSeen: number;
  group: string;
  metrics?: string;
}

/** A topology record without its source text (which can be megabytes). */
export type TopologyView = Omit<TopologyRecord, "source"> & { tasks: number };

/** A task with where it runs. */
export interface TaskView {
  topologyId: string;
  path: string;
  id: string;
  state: string;
  restarts: number;
  pid?: number;
  exitCode?: number | null;
  signal?: string | null;
  reason?: string;
  startedAt?: number;
  agent: string;
  host: string;
}

/** Options for {@linkcode startFeed}. */
export interface FeedInit {
  node: MeshNode;
  /** The agent the light peer reached first; others are asked when it is gone. */
  via: string;
  sessionId: string;
}

/** The dashboard's mesh side. */
export class Feed implements AsyncDisposable {
  readonly messages: EventHub<FeedMessage> = new EventHub();
  /** The session's environments, live. */
  readonly envs: EnvFeed;
  readonly #init: FeedInit;
  readonly #membership: Membership;
  readonly #offs: (() => void)[] = [];
  #agents: AgentView[] = [];
  #refresh: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(init: FeedInit, membership: Membership) {
    this.#init = init;
    this.#membership = membership;
    this.envs = new EnvFeed({
      node: init.node,
      ask: (fn, options) => this.#ask(fn, options),
      via: () => this.#init.via,
      sessionId: init.sessionId,
      emit: (env) => this.messages.emit({ kind: "env", env }),
    });
  }

  /** Agents as last fetched. */
  get agents(): AgentView[] {
    return this.#agents;
  }

  /** Subscribes to the mesh and fetches the first view of the agents. */
  async start(): Promise<void> {
    const { node } = this.#init;
    this.#offs.push(this.#membership.events.on((e) => {
      this.messages.emit({ kind: "event", event: e });
      this.#refreshAgentsSoon();
    }));
    const onEvents = (events: ShoalEvent[]) => {
      // An environment's task states come one event per state: the page lists one per task.
      for (const e of events.flatMap((x) => expandTaskStates(x))) {
        this.messages.emit({ kind: "event", event: e });
        this.envs.onEvent(e);
      }
      // Slots change as tasks start and stop; the agents' figures travel in their membership updates.
      this.#refreshAgentsSoon();
    };
    this.#offs.push(node.subscribe(EVENTS_TOPIC, EventMessageSchema, onEvents));
    this.#offs.push(node.subscribe(TASK_EVENTS_TOPIC, EventMessageSchema, onEvents));
    // Task starts and restarts reach only the tools connected to their agent.
    const follower = followEveryAgent(node, this.#membership, { topic: EVENTS_TOPIC });
    this.#offs.push(() => follower[Symbol.dispose]());
    this.#offs.push(node.subscribe(TOPOLOGIES_TOPIC, TopologyRecordSchema, (r) => {
      this.messages.emit({ kind: "topology", topology: topologyView(r) });
    }));
    this.#offs.push(node.subscribe(KV_TOPIC, KvBatchSchema, (b) => {
      this.messages.emit({ kind: "kv", entries: b.entries });
    }));
    this.envs.start();
    this.#offs.push(() => this.envs.stop());
    await this.refreshAgents();
  }

  /** Fetches the agents now and pushes them to pages. */
  async refreshAgents(options: { signal?: AbortSignal } = {}): Promise<AgentView[]> {
    const members = await this.#ask((init) => fetchMembers(init), options);
    this.#agents = members.map(agentView);
    this.messages.emit({ kind: "agents", agents: this.#agents });
    return this.#agents;
  }

  /** Every topology record (active and stopped). */
  async topologies(options: { signal?: AbortSignal } = {}): Promise<TopologyView[]> {
    return (await this.#ask((init) => fetchTopologies(init), options)).map(topologyView);
  }

  /** Every task of a topology, with the agent running it. */
  async tasks(topologyId: string, options: { signal?: AbortSignal } = {}): Promise<TaskView[]> {
    const { agents: byAgent } = await this.#ask((init) => fetchTasks(init, { topologyId }), options);
    return byAgent.flatMap((a) => a.tasks.map((t) => ({ ...taskView(t), agent: a.agent, host: a.host })));
  }

  /** The key-value entries of a topology (every writer's value, tombstones included). */
  async kv(topologyId: string, options: { signal?: AbortSignal } = {}): Promise<KvEntry[]> {
    return await this.#ask((init) => listEntries(init.node, init.via, { topologyId }, options), options);
  }

  /**
   * Sends a custom command as a tool and waits for `waitReplies` replies, by default one from each alive
   * agent or running task that the condition names (up to the timeout: not every task answers).
   */
  async command(
    cmd: { topologyId: string; condition: string; payload: string; waitReplies?: number; timeoutMs: number },
    options: { signal?: AbortSignal } = {},
  ): Promise<
    {
      id: string;
      timedOut: boolean;
      replies: { sender: string; path: string; host?: string; text: string }[];
    }
  > {
    const toAgents = parseCondition(cmd.condition).kind === "agents";
    const want = cmd.waitReplies ??
      (toAgents
        ? this.#agents.filter((m) =>
          m.state === "alive" && matchesAgent(cmd.condition, { peerId: m.id, host: m.host })
        )
          .length
        : await this.#matchingTasks(cmd.topologyId, cmd.condition, options));
    const r = await this.#ask((init) =>
      request(init.node, init.via, CMD_PROTOCOL, {
        topologyId: toAgents ? "" : cmd.topologyId,
        condition: cmd.condition,
        payload: new TextEncoder().encode(cmd.payload),
        waitReplies: want,
        timeoutMs: cmd.timeoutMs,
      }, {
        schema: CmdResponseSchema,
        timeoutMs: cmd.timeoutMs + 10_000,
        maxBytes: 64 * 1024 * 1024,
        ...(options.signal ? { signal: options.signal } : {}),
      }), options);
    return {
      id: r.id,
      timedOut: r.timedOut,
      replies: r.replies.map((x) => ({
        sender: x.sender.id,
        path: x.sender.path,
        ...(x.sender.host !== undefined ? { host: x.sender.host } : {}),
        text: new TextDecoder().decode(x.payload),
      })),
    };
  }

  /**
   * Follows one task's stdout and stderr from the agent running it: the last `tailBytes` first, then what
   * it writes, until `signal` aborts.
   */
  async *logs(
    task: { topologyId: string; path: string; agent: string },
    options: { signal: AbortSignal; tailBytes?: number },
  ): AsyncGenerator<{ stream: "stdout" | "stderr"; text: string }> {
    const stream = await this.#init.node.openStream(task.agent, LOGS_PROTOCOL, { signal: options.signal });
    const onAbort = () => stream.abort(new Error("stopped"));
    options.signal.addEventListener("abort", onAbort, { once: true });
    const lp = lpStream(stream, { maxDataLength: 1024 * 1024 });
    try {
      await lp.write(encode({
        topologyId: task.topologyId,
        pathRegex: `^${task.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`,
        follow: true,
        tailBytes: options.tailBytes ?? 16 * 1024,
      }));
      const decoder = { stdout: new TextDecoder(), stderr: new TextDecoder() };
      while (!options.signal.aborted) {
        const frame = await lp.read().catch(() => undefined);
        if (!frame) return;
        const chunk = decode(frame.subarray(), LogChunkSchema, {
          what: LOGS_PROTOCOL,
          maxBytes: 1024 * 1024,
        });
        yield { stream: chunk.stream, text: decoder[chunk.stream].decode(chunk.data, { stream: true }) };
      }
    } finally {
      options.signal.removeEventListener("abort", onAbort);
      stream.abort(new Error("done"));
    }
  }

  async #matchingTasks(
    topologyId: string,
    condition: string,
    options: { signal?: AbortSignal },
  ): Promise<number> {
    if (!topologyId) return 0;
    const tasks = await this.tasks(topologyId, options);
    const paths = new Set(tasks.map((t) => t.path));
    const tool = { id: "", path: "" };
    return tasks.filter((t) => t.state === "running" && matchesCondition(condition, t, tool, paths)).length;
  }

  /** Leaves the topics and the membership feed. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#refresh);
    for (const off of this.#offs) off();
    await this.#membership.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One fetch of the agents per second at most, however many events arrive. */
  #refreshAgentsSoon(): void {
    if (this.#refresh || this.#closed) return;
    this.#refresh = setTimeout(() => {
      this.#refresh = undefined;
      // The next membership event refreshes again; the page keeps the view it has.
      void this.refreshAgents().catch(() => {});
    }, 1_000);
  }

  /** Asks through the first agent, or through another alive one when it does not answer. */
  async #ask<T>(fn: (init: CommanderInit) => Promise<T>, options: { signal?: AbortSignal }): Promise<T> {
    const tried = new Set<string>();
    const order = [
      this.#init.via,
      ...this.#agents.filter((a) => a.state === "alive").map((a) => a.id),
      ...this.#init.node.connectedPeers(),
    ];
    let last: unknown;
    for (const via of order) {
      if (tried.has(via)) continue;
      tried.add(via);
      options.signal?.throwIfAborted();
      try {
        const result = await fn({ node: this.#init.node, via, sessionId: this.#init.sessionId });
        this.#init.via = via;
        return result;
      } catch (err) {
        if ((err as Error)?.name === "RemoteError") throw err;
        last = err;
      }
    }
    throw last ?? new Error("No agent of the session answered");
  }
}

/** Starts the feed on a connected light peer. */
export async function startFeed(init: FeedInit): Promise<Feed> {
  const membership = await startMembership({ node: init.node });
  const feed = new Feed({ ...init }, membership);
  await feed.start();
  return feed;
}

function agentView(m: Member): AgentView {
  return {
    id: m.id,
    host: m.host,
    state: m.state,
    slots: m.slots,
    load: m.load,
    version: m.version,
    startedAt: m.startedAt,
    lastSeen: m.lastSeen,
    group: m.group,
    ...(m.labels[METRICS_LABEL] ? { metrics: m.labels[METRICS_LABEL] } : {}),
  };
}

function topologyView(r: TopologyRecord): TopologyView {
  const { source: _source, ...rest } = r;
  return { ...rest, tasks: Object.values(r.placement).reduce((n, l) => n + l.length, 0) };
}

function taskView(t: {
  topologyId: string;
  path: string;
  id: string;
  state: string;
  restarts: number;
  pid?: number;
  exitCode?: number | null;
  signal?: string | null;
  reason?: string;
  startedAt?: number;
}): Omit<TaskView, "agent" | "host"> {
  const { topologyId, path, id, state, restarts, pid, exitCode, signal, reason, startedAt } = t;
  return {
    topologyId,
    path,
    id,
    state,
    restarts,
    ...(pid !== undefined ? { pid } : {}),
    ...(exitCode !== undefined ? { exitCode } : {}),
    ...(signal !== undefined ? { signal } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(startedAt !== undefined ? { startedAt } : {}),
  };
}

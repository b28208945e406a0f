/**
 * Collectives on one agent. Its local members' contributions are combined here first; then one partial
 * goes up the tree over the participating agents (`tree.ts`), the root completes the generation, and the
 * outcome comes back down the same tree. Each agent talks only to its parent and at most k children.
 *
 * A generation fails — for every waiter, with the members that had not contributed — when a member that
 * had not contributed exits, when a participating agent dies, or when a member's timeout runs out. The
 * agent that notices asks the root to end it; the root asks down the tree who is missing, then sends the
 * failure down. An unreachable agent's children are asked (and told) directly by its parent. A member's
 * n-th call of a collective is generation n, so the next generation after a failure starts clean.
 *
 * @module
 */
import {
  type EventHub,
  EVENTS_TOPIC,
  handleRequests,
  type Member,
  type Membership,
  type MeshNode,
  REAL_CLOCK,
  RemoteError,
  request,
  type SwimClock,
} from "../mesh/mod.ts";
import type { Logger } from "../agent/log.ts";
import type { TopologyRecord } from "../agent/wire/mod.ts";
import { EventMessageSchema, type EventOf, type RunnerEvent } from "../agent/wire/mod.ts";
import { expandRecord } from "../commander/mod.ts";
import { contribution, mergeAll, resultFor } from "./combine.ts";
import { CollectiveFailedError, CollectiveGroupError, CollectiveMismatchError } from "./errors.ts";
import { type GroupTask, normaliseGroup, selectMembers, toolPlaces } from "./group.ts";
import { buildTree, type Tree } from "./tree.ts";
import {
  COLL_OPS,
  COLL_PROTOCOL,
  type CollOp,
  type CollRequest,
  CollRequestSchema,
  CollResponseSchema,
  type CollSpec,
  DEFAULT_FANOUT,
  MAX_NAMED,
  type MemberResult,
  type Outcome,
  type Partial,
  REDUCE_OPS,
  type ReduceOp,
  ROOTED_OPS,
} from "./types.ts";

/** A clock, so that deadline logic can run under a fake one (the membership's clock shape). */
export type CollClock = SwimClock;

/** What {@linkcode startCollService} needs. */
export interface CollServiceInit {
  node: MeshNode;
  membership: Membership;
  /** The replicated topology records (placement and source). */
  records: { get(id: string): TopologyRecord | undefined; changes: EventHub<TopologyRecord> };
  /** This agent's task events (exits end generations their task had not joined). */
  taskEvents: EventHub<RunnerEvent>;
  log: Logger;
  clock?: CollClock;
}

/** The task that calls, as the task API knows it. */
export interface CollCaller {
  topologyId: string;
  path: string;
  id: string;
  /** "" outside collections. */
  collectionPath: string;
}

/** One call of a collective by a member. */
export interface CollCall {
  op: CollOp;
  name: string;
  /** See `group.ts`; default every task of the topology. */
  group?: string;
  /** For reduce/allreduce (default sum). */
  reduce?: ReduceOp;
  /** Root member (path or DDS task ID) of rooted operations; default the group's first member. */
  root?: string;
  fanout?: number;
  /** End the generation for everyone if it has not completed this long after this call (0: never). */
  timeoutMs?: number;
  data?: Uint8Array;
  /** The root's parts of a scatter, one per member in rank order. */
  parts?: Uint8Array[];
  signal?: AbortSignal;
}

interface Members {
  /** Task members in rank order. */
  list: string[];
  /** Places for tools (`+tools:N`). */
  tools: number;
  /** Tasks, then the tool places (`tool#0`, …). */
  names: string[];
  rank: Map<string, number>;
  byAgent: Map<string, string[]>;
  hostOf: Map<string, string>;
}

interface Context {
  key: string;
  tasks: GroupTask[];
  byId: Map<string, string>;
  hostOf: Map<string, string>;
  groups: Map<string, Members>;
}

interface Waiter {
  resolve(r: MemberResult): void;
  reject(e: Error): void;
}

interface Gen {
  key: string;
  cid: string;
  gen: number;
  spec: CollSpec;
  specKey: string;
  members: Members;
  tree: Tree;
  local: string[];
  contributed: Map<string, Partial>;
  children: Map<string, Partial>;
  waiters: Map<string, Waiter>;
  outcome?: Outcome;
  sentUp: boolean;
  failing: boolean;
  reported: boolean;
  timer?: unknown;
  deadline: number;
  probed: Set<string>;
  /** Local members that ended before contributing: missing even if a restart contributes meanwhile. */
  crashed: Set<string>;
}

/** Finished generations kept per collective, for late messages. */
const KEEP_FINISHED = 8;
const MAX_NAME = 256;
/** How long a tool waits at most for a generation (yamux resets a stream idle for 120 s). */
const TOOL_WAIT_MS = 100_000;
/** How long a call or message waits for its topology's record to arrive. */
const RECORD_WAIT_MS = 15_000;

function specKeyOf(s: CollSpec): string {
  return JSON.stringify([s.op, s.reduce ?? null, s.root ?? null, s.fanout]);
}

function describe(s: CollSpec): string {
  return `${s.op}${s.reduce ? ` ${s.reduce}` : ""}${
    s.root ? ` rooted at ${s.root}` : ""
  } (fan-out ${s.fanout})`;
}

function exitReason(e: Extract<RunnerEvent, { type: "task:exited" }> | EventOf<"task:exited">): string {
  if (e.stopped) return "was stopped";
  if (e.signal) return `was killed by ${e.signal}`;
  return `exited with code ${e.code}`;
}

/** Collectives served by one agent. */
export class CollService {
  readonly #init: CollServiceInit;
  readonly #self: string;
  readonly #clock: CollClock;
  readonly #gens = new Map<string, Gen>();
  /** `cid \0 path` → the last generation that local member called. */
  readonly #calls = new Map<string, number>();
  /** cid → finished generation keys, oldest first; and the highest generation forgotten. */
  readonly #finished = new Map<string, { keys: string[]; forgotten: number }>();
  /** `topologyId \0 path` → why that task ended for good. */
  readonly #ended = new Map<string, string>();
  readonly #contexts = new Map<string, Context>();
  /** Tools waiting for a generation's outcome here (at its root), by generation key. */
  readonly #observers = new Map<string, Waiter[]>();
  /** Peer ID → a dialable address, from the membership view. */
  readonly #addrs = new Map<string, string>();
  readonly #offs: (() => void)[] = [];

  constructor(init: CollServiceInit) {
    this.#init = init;
    this.#self = init.node.peerId;
    this.#clock = init.clock ?? REAL_CLOCK;
  }

  /** Serves the protocol and follows task exits, agent deaths and stopped topologies. */
  async start(): Promise<void> {
    const { node, membership, records, taskEvents } = this.#init;
    await handleRequests(node, COLL_PROTOCOL, {
      schema: CollRequestSchema,
      maxBytes: 64 * 1024 * 1024,
      handler: (req, from) => this.#handle(req, from),
    });
    this.#offs.push(taskEvents.on((e) => {
      if (e.type === "task:started") this.#ended.delete(`${e.topologyId}\0${e.path}`);
      if (e.type === "task:exited") {
        this.#memberExited(e.topologyId, e.path, exitReason(e), !e.willRestart, true);
      }
    }));
    this.#offs.push(node.subscribe(EVENTS_TOPIC, EventMessageSchema, (events) => {
      for (const e of events) {
        if (e.type !== "task:exited" || e.willRestart || e.by === this.#self) continue;
        this.#memberExited(e.topologyId, e.path, exitReason(e), true, false);
      }
    }));
    this.#offs.push(membership.events.on((e) => {
      if (e.type === "agent:dead" || e.type === "agent:left") this.#agentGone(e.id, e.host);
    }));
    this.#offs.push(records.changes.on((r) => {
      if (r.state === "stopped") this.#topologyStopped(r.id);
    }));
  }

  /** Stops following events; open generations fail for their local waiters. */
  stop(): void {
    for (const off of this.#offs.splice(0)) off();
    for (const g of this.#gens.values()) {
      if (!g.outcome) this.#settle(g, this.#failure(g, "the agent is stopping"), false);
    }
  }

  /** Open generations on this agent (for tests and status). */
  get open(): number {
    let n = 0;
    for (const g of this.#gens.values()) if (!g.outcome) n++;
    return n;
  }

  /**
   * One member's call: resolves with its result once the generation completed everywhere.
   *
   * @throws {CollectiveFailedError} when the generation failed
   * @throws {CollectiveMismatchError} when other members of this generation asked for something else
   * @throws {CollectiveGroupError} when the group names no task or not the caller
   * @throws {RangeError} for malformed arguments
   */
  async contribute(caller: CollCaller, call: CollCall): Promise<MemberResult> {
    // A task may start before its topology's record reached its agent (the commander writes it after the
    // leases): wait for it a moment.
    await this.#whenRecord(caller.topologyId, caller.path, call.signal);
    return await this.#contribute(caller, call);
  }

  /** Resolves once the topology's active record (placing `path`, when given) is here, or after a while. */
  #whenRecord(topologyId: string, path?: string, signal?: AbortSignal): Promise<void> {
    const { records } = this.#init;
    const ready = () => {
      const r = records.get(topologyId);
      if (!r || r.state !== "active") return false;
      return path === undefined || Object.values(r.placement).some((paths) => paths.includes(path));
    };
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        off();
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const off = records.changes.on(() => {
        if (ready()) done();
      });
      const timer = this.#clock.setTimeout(done, RECORD_WAIT_MS);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #contribute(caller: CollCaller, call: CollCall): Promise<MemberResult> {
    const spec = this.#specFor(caller, call);
    const members = this.#members(spec.topologyId, spec.group);
    const rank = members.rank.get(caller.path);
    if (rank === undefined) {
      throw new CollectiveGroupError(
        `Task "${caller.path}" is not in group "${spec.group}" of collective "${spec.name}" (${members.list.length} members)`,
      );
    }
    if (spec.root !== undefined && !members.rank.has(spec.root)) {
      throw new CollectiveGroupError(`Root "${spec.root}" of collective "${spec.name}" is not in its group`);
    }
    const cid = this.#cid(spec);
    const callKey = `${cid}\0${caller.path}`;
    const gen = (this.#calls.get(callKey) ?? 0) + 1;
    const g = this.#open(spec, gen);
    if (g.specKey !== specKeyOf(spec)) {
      throw new CollectiveMismatchError(
        `Collective "${spec.name}" generation ${gen} is a ${
          describe(g.spec)
        }; task "${caller.path}" asked for a ${describe(spec)}`,
      );
    }
    if (spec.op === "scatter" && caller.path === spec.root && call.parts?.length !== members.list.length) {
      throw new RangeError(
        `The root of scatter "${spec.name}" gives ${
          call.parts?.length ?? 0
        } parts for ${members.list.length} members`,
      );
    }
    const partial = contribution(spec, rank, caller.path === spec.root, call);
    this.#calls.set(callKey, gen);
    if (g.outcome) return Promise.resolve().then(() => this.#resultOf(g, caller.path));
    g.contributed.set(caller.path, partial);
    const done = new Promise<MemberResult>((resolve, reject) => {
      g.waiters.set(caller.path, { resolve, reject });
      call.signal?.addEventListener("abort", () => {
        if (g.waiters.delete(caller.path)) reject(call.signal!.reason);
      }, { once: true });
    });
    const timeoutMs = call.timeoutMs ?? 0;
    if (timeoutMs > 0) this.#arm(g, timeoutMs, caller.path);
    this.#progress(g);
    return done;
  }

  #specFor(caller: CollCaller, call: CollCall): CollSpec {
    if (!COLL_OPS.includes(call.op)) {
      throw new RangeError(`Unknown collective "${call.op}"; use ${COLL_OPS.join(", ")}`);
    }
    const name = call.name;
    if (!name || name.length > MAX_NAME || name.includes("\0")) {
      throw new RangeError(`Collective name "${name.slice(0, 40)}" must be 1–${MAX_NAME} characters`);
    }
    const reducing = call.op === "reduce" || call.op === "allreduce";
    const reduce = reducing ? call.reduce ?? "sum" : undefined;
    if (reduce !== undefined && !REDUCE_OPS.includes(reduce)) {
      throw new RangeError(`Unknown reduction "${reduce}"; use ${REDUCE_OPS.join(", ")}`);
    }
    const fanout = call.fanout ?? DEFAULT_FANOUT;
    if (!Number.isInteger(fanout) || fanout < 2 || fanout > 1024) {
      throw new RangeError(`Fan-out must be an integer from 2 to 1024, not ${fanout}`);
    }
    const group = normaliseGroup(call.group, caller);
    const spec: CollSpec = { topologyId: caller.topologyId, name, group, op: call.op, fanout };
    if (reduce) spec.reduce = reduce;
    if (ROOTED_OPS.has(call.op)) {
      const members = this.#members(caller.topologyId, group);
      const ctx = this.#context(caller.topologyId);
      spec.root = call.root ? ctx.byId.get(call.root) ?? call.root : members.list[0];
    }
    return spec;
  }

  #cid(spec: CollSpec): string {
    return `${spec.topologyId}\0${spec.name}\0${spec.group}`;
  }

  #context(topologyId: string): Context {
    const record = this.#init.records.get(topologyId);
    if (!record || record.state !== "active") {
      throw new CollectiveGroupError(`No active topology "${topologyId}" is known on this agent`);
    }
    const key = `${record.epoch}.${record.version}.${record.updatedAt}`;
    const have = this.#contexts.get(topologyId);
    if (have?.key === key) return have;
    const tasks = expandRecord(record).tasks.map((t) => ({
      path: t.path,
      id: t.id,
      groupName: t.groupName,
      collectionPath: t.collectionPath,
    }));
    const hostOf = new Map<string, string>();
    for (const [agent, paths] of Object.entries(record.placement)) {
      for (const p of paths) hostOf.set(p, agent);
    }
    const ctx: Context = {
      key,
      tasks,
      byId: new Map(tasks.map((t) => [t.id, t.path])),
      hostOf,
      groups: new Map(),
    };
    this.#contexts.set(topologyId, ctx);
    return ctx;
  }

  #members(topologyId: string, group: string): Members {
    const ctx = this.#context(topologyId);
    const have = ctx.groups.get(group);
    if (have) return have;
    const list = selectMembers(group, ctx.tasks).filter((p) => ctx.hostOf.has(p));
    if (list.length === 0) {
      throw new CollectiveGroupError(`Group "${group}" names no placed task of topology "${topologyId}"`);
    }
    const byAgent = new Map<string, string[]>();
    for (const p of list) {
      const a = ctx.hostOf.get(p)!;
      const l = byAgent.get(a);
      if (l) l.push(p);
      else byAgent.set(a, [p]);
    }
    const tools = toolPlaces(group);
    const names = [...list, ...Array.from({ length: tools }, (_, j) => `tool#${j}`)];
    const m: Members = {
      list,
      tools,
      names,
      rank: new Map(names.map((p, i) => [p, i])),
      byAgent,
      hostOf: ctx.hostOf,
    };
    ctx.groups.set(group, m);
    return m;
  }

  /** The generation `gen` of `spec`'s collective, opened here if new. */
  #open(spec: CollSpec, gen: number): Gen {
    const cid = this.#cid(spec);
    const key = `${cid}\0${gen}`;
    const have = this.#gens.get(key);
    if (have) return have;
    const members = this.#members(spec.topologyId, spec.group);
    const tree = buildTree([...members.byAgent.keys()], cid, spec.fanout);
    // The root holds the tool places.
    const local = members.byAgent.get(this.#self) ?? [];
    const g: Gen = {
      key,
      cid,
      gen,
      spec,
      specKey: specKeyOf(spec),
      members,
      tree,
      local: tree.root === this.#self ? [...local, ...members.names.slice(members.list.length)] : local,
      contributed: new Map(),
      children: new Map(),
      waiters: new Map(),
      sentUp: false,
      failing: false,
      reported: false,
      deadline: Infinity,
      probed: new Set(),
      crashed: new Set(),
    };
    this.#gens.set(key, g);
    if (gen <= (this.#finished.get(cid)?.forgotten ?? 0)) {
      this.#settle(g, this.#failure(g, "it ended long ago (this member is many generations behind)"), false);
      return g;
    }
    queueMicrotask(() => this.#checkOnOpen(g));
    return g;
  }

  /** A generation opened while an agent of it is already dead, or a member already ended. */
  #checkOnOpen(g: Gen): void {
    if (g.outcome) return;
    const state = new Map(this.#init.membership.members().map((m) => [m.id, m]));
    for (const a of g.tree.agents) {
      const m = state.get(a);
      if (m && (m.state === "dead" || m.state === "left")) {
        return this.#fail(g, `agent ${hostName(m)} is ${m.state}`);
      }
    }
    for (const p of g.members.list) if (this.#ended.has(`${g.spec.topologyId}\0${p}`)) this.#checkEnded(g, p);
  }

  /** `member` ended: fail `g` if it never joined it (asked of the member's own agent). */
  #checkEnded(g: Gen, member: string): void {
    if (g.outcome) return;
    const why = this.#ended.get(`${g.spec.topologyId}\0${member}`);
    if (why === undefined) return;
    const host = g.members.hostOf.get(member);
    if (host === this.#self) {
      const called = this.#calls.get(`${g.cid}\0${member}`) ?? 0;
      if (called < g.gen && !g.contributed.has(member)) this.#fail(g, `member ${member} ${why}`);
      return;
    }
    if (host === undefined || g.probed.has(member)) return;
    g.probed.add(member);
    // A probe whose agent is gone needs no answer: that agent's death fails the member anyway.
    void this.#send(host, { type: "probe", spec: g.spec, gen: g.gen, member }).catch(() => {});
  }

  #memberExited(topologyId: string, path: string, why: string, forGood: boolean, local: boolean): void {
    if (forGood) this.#ended.set(`${topologyId}\0${path}`, why);
    for (const g of this.#gens.values()) {
      if (g.outcome || g.spec.topologyId !== topologyId || !g.members.rank.has(path)) continue;
      if (local) {
        if (!g.contributed.has(path) && g.members.hostOf.get(path) === this.#self) {
          g.crashed.add(path);
          this.#fail(g, `member ${path} ${why}`);
        }
      } else this.#checkEnded(g, path);
    }
  }

  #agentGone(id: string, host: string): void {
    for (const g of this.#gens.values()) {
      if (g.outcome || !g.tree.agents.includes(id)) continue;
      const reason = `agent ${host} (${id.slice(-8)}) died`;
      if (id === g.tree.root) {
        // No root to decide: every agent ends its own part, naming the members it knows are gone.
        const lost = g.members.byAgent.get(id) ?? [];
        const missing = [...this.#localMissing(g), ...lost];
        this.#settle(g, {
          ok: false,
          reason: `root ${reason}`,
          missing: missing.slice(0, MAX_NAMED),
          missingCount: missing.length,
        }, false);
      } else this.#fail(g, reason);
    }
  }

  #topologyStopped(topologyId: string): void {
    for (const g of this.#gens.values()) {
      if (g.spec.topologyId === topologyId && !g.outcome) {
        this.#settle(g, this.#failure(g, "its topology was stopped"), false);
      }
    }
    for (const m of [this.#gens, this.#calls, this.#ended, this.#finished]) {
      for (const k of m.keys()) if (k.startsWith(`${topologyId}\0`)) m.delete(k);
    }
    this.#contexts.delete(topologyId);
  }

  #arm(g: Gen, timeoutMs: number, by: string): void {
    const deadline = this.#clock.now() + timeoutMs;
    if (deadline >= g.deadline) return;
    g.deadline = deadline;
    if (g.timer !== undefined) this.#clock.clearTimeout(g.timer);
    g.timer = this.#clock.setTimeout(() => {
      g.timer = undefined;
      this.#fail(g, `timed out after ${timeoutMs / 1000} s (the timeout of ${by})`);
    }, timeoutMs);
  }

  /** Sends this agent's partial up (or completes, at the root) once its members and children are in. */
  #progress(g: Gen): void {
    if (g.outcome || g.sentUp || g.failing) return;
    if (g.contributed.size < g.local.length) return;
    const children = g.tree.children(this.#self);
    for (const c of children) if (!g.children.has(c)) return;
    let total: Partial;
    try {
      total = mergeAll(g.spec, [...g.contributed.values(), ...g.children.values()]);
    } catch (err) {
      return this.#fail(g, (err as Error).message);
    }
    g.sentUp = true;
    const parent = g.tree.parent(this.#self);
    if (parent === undefined) {
      const size = g.members.names.length;
      if (total.count !== size) {
        return void this.#rootFail(g, `${total.count} of ${size} contributions reached the root`);
      }
      return this.#settle(g, { ok: true, size, final: total }, true);
    }
    void this.#send(parent, { type: "up", spec: g.spec, gen: g.gen, partial: total }).catch((err) =>
      this.#fail(g, `cannot reach parent agent ${parent.slice(-8)}: ${(err as Error).message}`)
    );
  }

  /** Ends `g` for everyone, whoever noticed. */
  #fail(g: Gen, reason: string): void {
    if (g.outcome) return;
    if (g.tree.root === this.#self) return void this.#rootFail(g, reason);
    if (g.reported) return;
    g.reported = true;
    this.#init.log.info("collective failing", { name: g.spec.name, gen: g.gen, reason });
    void this.#send(g.tree.root, { type: "fail", spec: g.spec, gen: g.gen, reason }).catch((err) => {
      const lost = g.members.byAgent.get(g.tree.root) ?? [];
      const missing = [...this.#localMissing(g), ...lost];
      this.#settle(g, {
        ok: false,
        reason: `${reason}; the root agent is unreachable (${(err as Error).message})`,
        missing: missing.slice(0, MAX_NAMED),
        missingCount: missing.length,
      }, false);
    });
  }

  async #rootFail(g: Gen, reason: string): Promise<void> {
    if (g.outcome || g.failing) return;
    g.failing = true;
    const m = await this.#gatherMissing(g);
    this.#settle(g, { ok: false, reason, missing: m.missing, missingCount: m.missingCount }, true);
  }

  #localMissing(g: Gen): string[] {
    return g.local.filter((p) => !g.contributed.has(p) || g.crashed.has(p));
  }

  /** Members of this agent's subtree that had not contributed (asking the children). */
  async #gatherMissing(g: Gen, below = g.tree.children(this.#self)): Promise<
    { missing: string[]; missingCount: number }
  > {
    const own = this.#localMissing(g);
    const parts = await Promise.all(below.map(async (c) => {
      try {
        const r = await this.#send(c, { type: "missing", spec: g.spec, gen: g.gen });
        return { missing: r.missing ?? [], missingCount: r.missingCount ?? 0 };
      } catch {
        // Unreachable: all its members are missing, and its children answer for theirs.
        const lost = g.members.byAgent.get(c) ?? [];
        const sub = await this.#gatherMissing({ ...g, local: [] }, g.tree.children(c));
        return { missing: [...lost, ...sub.missing], missingCount: lost.length + sub.missingCount };
      }
    }));
    const missing = [...own];
    let missingCount = own.length;
    for (const p of parts) {
      missing.push(...p.missing);
      missingCount += p.missingCount;
    }
    missing.sort((a, b) => (g.members.rank.get(a) ?? 0) - (g.members.rank.get(b) ?? 0));
    return { missing: missing.slice(0, MAX_NAMED), missingCount };
  }

  #failure(g: Gen, reason: string): Outcome {
    const missing = this.#localMissing(g);
    return { ok: false, reason, missing: missing.slice(0, MAX_NAMED), missingCount: missing.length };
  }

  /** Records the outcome, answers the local waiters and (with `forward`) tells the children. */
  #settle(g: Gen, outcome: Outcome, forward: boolean): void {
    if (g.outcome) return;
    g.outcome = outcome;
    if (g.timer !== undefined) this.#clock.clearTimeout(g.timer);
    for (const path of g.waiters.keys()) {
      const w = g.waiters.get(path)!;
      try {
        w.resolve(this.#resultOf(g, path));
      } catch (err) {
        w.reject(err as Error);
      }
    }
    g.waiters.clear();
    const watching = this.#observers.get(g.key);
    this.#observers.delete(g.key);
    for (const w of watching ?? []) {
      try {
        w.resolve(this.#resultOf(g, g.spec.root ?? g.members.names[0]!));
      } catch (err) {
        w.reject(err as Error);
      }
    }
    if (forward) void this.#sendDown(g, g.tree.children(this.#self));
    const f = this.#finished.get(g.cid) ?? { keys: [], forgotten: 0 };
    this.#finished.set(g.cid, f);
    f.keys.push(g.key);
    while (f.keys.length > KEEP_FINISHED) {
      const old = this.#gens.get(f.keys.shift()!);
      if (!old) continue;
      this.#gens.delete(old.key);
      f.forgotten = Math.max(f.forgotten, old.gen);
    }
  }

  async #sendDown(g: Gen, targets: string[]): Promise<void> {
    await Promise.all(targets.map(async (c) => {
      try {
        await this.#send(c, { type: "down", spec: g.spec, gen: g.gen, outcome: g.outcome! });
      } catch {
        await this.#sendDown(g, g.tree.children(c));
      }
    }));
  }

  #resultOf(g: Gen, path: string): MemberResult {
    const o = g.outcome!;
    if (!o.ok) {
      throw new CollectiveFailedError({
        collective: g.spec.name,
        generation: g.gen,
        reason: o.reason,
        missing: o.missing,
        missingCount: o.missingCount,
      });
    }
    const rank = g.members.rank.get(path) ?? 0;
    return resultFor(g.spec, o.final, g.gen, g.members.names, rank, path === g.spec.root);
  }

  /** A peer ID, or (not connected) its address from the membership view: agents link to a few others only. */
  #target(peer: string): string {
    const { node, membership } = this.#init;
    if (peer === this.#self || node.connectedPeers().includes(peer)) return peer;
    let addr = this.#addrs.get(peer);
    if (addr === undefined) {
      for (const m of membership.members()) if (m.addrs[0]) this.#addrs.set(m.id, m.addrs[0]);
      addr = this.#addrs.get(peer);
    }
    if (!addr) return peer;
    return addr.includes("/p2p/") ? addr : `${addr}/p2p/${peer}`;
  }

  #send(peer: string, body: CollRequest) {
    return request(this.#init.node, this.#target(peer), COLL_PROTOCOL, body, {
      schema: CollResponseSchema,
      timeoutMs: 30_000,
      maxBytes: 64 * 1024 * 1024,
    });
  }

  async #openFrom(req: Exclude<CollRequest, { type: "tool" | "observe" }>): Promise<Gen | undefined> {
    await this.#whenRecord(req.spec.topologyId);
    try {
      return this.#open(req.spec, req.gen);
    } catch (err) {
      this.#init.log.warn("collective message for an unknown group", {
        name: req.spec.name,
        reason: (err as Error).message,
      });
      return undefined;
    }
  }

  async #handle(req: CollRequest, from: string) {
    if (req.type === "tool") return await this.#tool(req);
    if (req.type === "observe") return await this.#observe(req);
    const g = await this.#openFrom(req);
    if (!g) return { ok: false };
    switch (req.type) {
      case "up":
        if (g.specKey !== specKeyOf(req.spec)) {
          this.#fail(g, `members disagree: ${describe(g.spec)} here, ${describe(req.spec)} below`);
        } else if (!g.outcome) {
          g.children.set(from, req.partial);
          this.#progress(g);
        }
        return { ok: true };
      case "down":
        this.#settle(g, req.outcome, true);
        return { ok: true };
      case "fail":
        void this.#rootFail(g, req.reason);
        return { ok: true };
      case "missing":
        return { ok: true, ...(await this.#gatherMissing(g)) };
      case "probe":
        this.#checkEnded(g, req.member);
        return { ok: true };
    }
  }

  /** The generation a tool takes part in or observes: the first still open here, else the next. */
  #nextGen(cid: string, open: (g: Gen) => boolean): number {
    let lowest = Infinity;
    let highest = this.#finished.get(cid)?.forgotten ?? 0;
    for (const g of this.#gens.values()) {
      if (g.cid !== cid) continue;
      highest = Math.max(highest, g.gen);
      if (!g.outcome && open(g)) lowest = Math.min(lowest, g.gen);
    }
    return lowest < Infinity ? lowest : highest + 1;
  }

  /** Forwards a tool's request to the root, keeping the remote error's name. */
  async #toRoot(root: string, body: CollRequest, waitMs: number) {
    try {
      return await request(this.#init.node, this.#target(root), COLL_PROTOCOL, body, {
        schema: CollResponseSchema,
        timeoutMs: waitMs + 10_000,
        maxBytes: 64 * 1024 * 1024,
      });
    } catch (err) {
      if (!(err instanceof RemoteError)) throw err;
      const e = new Error(err.message, { cause: err });
      e.name = err.remoteName;
      throw e;
    }
  }

  async #tool(req: Extract<CollRequest, { type: "tool" }>) {
    let spec = req.spec;
    if (!spec) {
      if (!req.call) throw new RangeError("A tool's request names no collective");
      await this.#whenRecord(req.topologyId);
      spec = this.#specFor({ topologyId: req.topologyId, path: "", id: "", collectionPath: "" }, req.call);
    }
    const members = this.#members(spec.topologyId, spec.group);
    if (members.tools === 0) {
      throw new CollectiveGroupError(
        `Group "${spec.group}" of collective "${spec.name}" has no place for tools; every member adds +tools:N to its group`,
      );
    }
    const cid = this.#cid(spec);
    const root = buildTree([...members.byAgent.keys()], cid, spec.fanout).root;
    const waitMs = req.timeoutMs || TOOL_WAIT_MS;
    if (root !== this.#self) return await this.#toRoot(root, { ...req, spec, call: undefined }, waitMs);
    const places = members.names.slice(members.list.length);
    const free = (g: Gen) => places.some((p) => !g.contributed.has(p));
    const g = this.#open(spec, req.gen || this.#nextGen(cid, free));
    if (g.specKey !== specKeyOf(spec)) {
      throw new CollectiveMismatchError(
        `Collective "${spec.name}" generation ${g.gen} is a ${describe(g.spec)}; tool ${req.by} asked for a ${
          describe(spec)
        }`,
      );
    }
    if (g.outcome) return { ok: true, result: this.#resultOf(g, places[0]!) };
    const place = places.find((p) => !g.contributed.has(p));
    if (place === undefined) {
      throw new CollectiveGroupError(
        `All ${places.length} tool places of "${spec.name}" generation ${g.gen} are taken`,
      );
    }
    g.contributed.set(place, contribution(spec, members.rank.get(place)!, false, req));
    const done = new Promise<MemberResult>((resolve, reject) => g.waiters.set(place, { resolve, reject }));
    if (req.timeoutMs > 0) this.#arm(g, req.timeoutMs, `tool ${req.by}`);
    this.#progress(g);
    return { ok: true, result: await done };
  }

  async #observe(req: Extract<CollRequest, { type: "observe" }>) {
    await this.#whenRecord(req.topologyId);
    const group = normaliseGroup(req.group, { collectionPath: "" });
    const members = this.#members(req.topologyId, group);
    const cid = `${req.topologyId}\0${req.name}\0${group}`;
    const root = buildTree([...members.byAgent.keys()], cid, 2).root;
    if (!req.atRoot && root !== this.#self) {
      return await this.#toRoot(root, { ...req, atRoot: true }, TOOL_WAIT_MS);
    }
    const gen = req.gen || this.#nextGen(cid, () => true);
    const key = `${cid}\0${gen}`;
    const have = this.#gens.get(key);
    if (have?.outcome) return { ok: true, result: this.#resultOf(have, have.spec.root ?? members.names[0]!) };
    const result = await new Promise<MemberResult>((resolve, reject) => {
      const list = this.#observers.get(key) ?? [];
      this.#observers.set(key, list);
      const timer = this.#clock.setTimeout(() => {
        const l = this.#observers.get(key);
        if (l) l.splice(l.indexOf(w), 1);
        const e = new Error(
          `"${req.name}" generation ${gen} did not end within ${TOOL_WAIT_MS / 1000} s; observe again`,
        );
        e.name = "TimeoutError";
        reject(e);
      }, TOOL_WAIT_MS);
      const w: Waiter = {
        resolve: (r) => {
          this.#clock.clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          this.#clock.clearTimeout(timer);
          reject(e);
        },
      };
      list.push(w);
    });
    return { ok: true, result };
  }
}

function hostName(m: Member): string {
  return `${m.host} (${m.id.slice(-8)})`;
}

/** Starts the collectives of an agent. */
export async function startCollService(init: CollServiceInit): Promise<CollService> {
  const s = new CollService(init);
  await s.start();
  return s;
}

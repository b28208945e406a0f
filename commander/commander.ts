/**
 * The commander role, which any peer can take (the CLI as a light peer, or an agent): place an expanded
 * topology on the free slots of the membership view, lease them from each agent (the agents alone decide),
 * re-place what was refused, and record the desired state in the mesh.
 *
 * @module
 */
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { type Member, type MeshNode, request, VIEW_PROTOCOL, ViewSchema } from "../mesh/mod.ts";
import {
  type AgentSlots,
  diffTopologies,
  type ExpandedTopology,
  expandTopology,
  parseTopology,
  placeTasks,
  type RuntimeTask,
  topologyFromJson,
} from "../topology/mod.ts";
import { CommanderError } from "./errors.ts";
import { packBlobs } from "../agent/wire/mod.ts";
import { locateDeclared, sourcesFor, stageLeaseFiles } from "./lease_staging.ts";
import {
  LEASE_COMMIT_PROTOCOL,
  LEASE_PROTOCOL,
  LeaseCommitResponseSchema,
  LeaseResponseSchema,
  STOP_PROTOCOL,
  StopResponseSchema,
  TASKS_PROTOCOL,
  type TasksResponse,
  TasksResponseSchema,
  TOPOLOGIES_PROTOCOL,
  TopologiesResponseSchema,
  type TopologyRecord,
} from "../agent/wire/mod.ts";
import { Shipper, toTaskSpec } from "./task_specs.ts";
import type { TaskSpec, TaskStatus } from "../agent/wire/mod.ts";
import type { StageSource } from "../stage/types.ts";

/** What a commander works with. */
export interface CommanderInit {
  node: MeshNode;
  /** The agent through which the view and desired state are read and stored. */
  via: string;
  sessionId: string;
  /** Progress of long operations: `done` of `total` tasks. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Waits before a re-placement (default a timer of `ms`; unit tests pass a fake clock's). */
  delay?: (ms: number) => Promise<void>;
}

/** A task as it ended up after an operation. */
export interface PlacedTask extends TaskStatus {
  agent: string;
}

/** Result of {@linkcode activateTopology} and {@linkcode updateTopology}. */
export interface DeployResult {
  topologyId: string;
  name: string;
  tasks: PlacedTask[];
  /** Agents used. */
  agents: number;
  started: number;
  failed: number;
  stopped: number;
  elapsedMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function opts(init: CommanderInit, timeoutMs = 30_000) {
  return { timeoutMs, ...(init.signal ? { signal: init.signal } : {}) };
}

/** Parses a topology record's source again (agents and commanders expand identically). */
export function expandRecord(record: Pick<TopologyRecord, "source" | "file" | "vars">): ExpandedTopology {
  const topo = /^\s*\{/.test(record.source)
    ? topologyFromJson(JSON.parse(record.source), { file: record.file })
    : parseTopology(record.source, { file: record.file, vars: record.vars });
  return expandTopology(topo);
}

/** The membership view, as the `via` agent sees it; a light peer learns every member's addresses from it. */
export async function fetchMembers(init: CommanderInit): Promise<Member[]> {
  const view = await request(init.node, init.via, VIEW_PROTOCOL, {}, {
    schema: ViewSchema,
    ...opts(init, 10_000),
  });
  if (init.via !== init.node.peerId) await learnAddrs(init.node, view.members);
  return view.members;
}

/** Puts the view's addresses into the peer store, so agents known only from the view can be dialled. */
async function learnAddrs(node: MeshNode, members: Member[]): Promise<void> {
  await Promise.all(
    members.filter((m) => m.addrs.length > 0 && m.id !== node.peerId).map(async (m) => {
      try {
        await node.libp2p.peerStore.merge(peerIdFromString(m.id), {
          multiaddrs: m.addrs.map((a) => multiaddr(a)),
        });
      } catch { /* a malformed ID or address: that member stays undialled, and reported unreachable */ }
    }),
  );
}
/** Every topology record the mesh holds. */
export async function fetchTopologies(init: CommanderInit): Promise<TopologyRecord[]> {
  const res = await request(init.node, init.via, TOPOLOGIES_PROTOCOL, { op: "list" }, {
    schema: TopologiesResponseSchema,
    ...opts(init, 10_000),
  });
  return res.records;
}

/** Stores a record on the `via` agent, which gossips it. */
export async function putTopology(init: CommanderInit, record: TopologyRecord): Promise<void> {
  await request(init.node, init.via, TOPOLOGIES_PROTOCOL, { op: "put", record }, {
    schema: TopologiesResponseSchema,
    ...opts(init, 10_000),
  });
}

/** One agent's answer to a tasks request. */
export type AgentTasks = TasksResponse;

/** What {@linkcode fetchTasks} gathered: the answers, and the alive agents that gave none. */
export interface TasksView {
  agents: AgentTasks[];
  /** Agents alive in the view that did not answer, and why. */
  unreachable: { id: string; host: string; reason: string }[];
}

/** Every alive (or suspect) agent's tasks, asked directly and in parallel; agents that do not answer are named. */
export async function fetchTasks(
  init: CommanderInit,
  filter: { topologyId?: string } = {},
): Promise<TasksView> {
  // Suspects are asked too: they may well be alive, and an answer is better than a guess.
  const members = (await fetchMembers(init)).filter((m) => m.state === "alive" || m.state === "suspect");
  const all = await Promise.allSettled(
    members.map((m) =>
      request(init.node, m.id, TASKS_PROTOCOL, filter, { schema: TasksResponseSchema, ...opts(init, 10_000) })
    ),
  );
  const view: TasksView = { agents: [], unreachable: [] };
  all.forEach((r, i) => {
    if (r.status === "fulfilled") view.agents.push(r.value);
    else {
      const m = members[i]!;
      view.unreachable.push({ id: m.id, host: m.host, reason: errorText(r.reason) });
    }
  });
  return view;
}

/** A rejection's message: a timeout named as one, an `Event` (a stream's abort or error) by its type. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    return err.name === "TimeoutError" || err.name === "AbortError"
      ? `timed out (${err.message})`
      : err.message;
  }
  if (typeof Event !== "undefined" && err instanceof Event) {
    const inner = (err as Event & { error?: unknown }).error;
    return inner !== undefined ? errorText(inner) : `the stream ended with a "${err.type}" event`;
  }
  return String(err);
}

function aliveTargets(members: Member[]): { id: string; host: string }[] {
  return members.filter((m) => m.state === "alive").map((m) => ({ id: m.id, host: m.host }));
}

function toAgentSlots(members: Member[], extra: Map<string, number> = new Map()): AgentSlots[] {
  return members.filter((m) => m.state === "alive").map((m) => ({
    id: m.id,
    host: m.host,
    wnName: m.host,
    freeSlots: m.slots.free + (extra.get(m.id) ?? 0),
    ...(m.group ? { group: m.group } : {}),
    ...(m.gpus ? { gpus: m.gpus } : {}),
    labels: m.labels,
  }));
}

/** A sub-topology of `expanded` holding only `paths` (collections kept whole when fully included). */
function subset(expanded: ExpandedTopology, paths: Set<string>): ExpandedTopology {
  const collections = expanded.collections.filter((c) => c.tasks.every((t) => paths.has(t.path)));
  const inColl = new Set(collections.flatMap((c) => c.tasks.map((t) => t.path)));
  const loose = expanded.tasks.filter((t) => paths.has(t.path) && !inColl.has(t.path))
    .map((t) => ({ ...t, collectionPath: null }));
  const tasks = [...loose, ...expanded.tasks.filter((t) => inColl.has(t.path))];
  return { ...expanded, tasks, collections };
}

/**
 * Places `tasks` and leases them, re-placing what agents refuse (another commander took the slots, or an
 * agent died) until all run or nothing fits. Throws {@linkcode CommanderError} saying what is missing.
 */
async function placeAndLease(
  init: CommanderInit,
  expanded: ExpandedTopology,
  paths: Set<string>,
  ctx: {
    topologyId: string;
    epoch: number;
    freed?: Map<string, number>;
    progress: { done: number; total: number };
    /** The view to place with first (fetched alongside other requests); later attempts fetch their own. */
    members?: Member[];
    /** More environment variables for these tasks. */
    extraEnv?: Record<string, string>;
    /** Hold every lease and start the tasks only once all are granted (see {@linkcode ActivateOptions.hold}). */
    hold?: boolean;
    /** Where the staged names the tasks declare are (found by the caller already), by name. */
    stageSources?: ReadonlyMap<string, StageSource>;
  },
): Promise<PlacedTask[]> {
  if (!ctx.hold) return await leaseLoop(init, expanded, paths, ctx, []);
  const held: { agent: string; hold: string }[] = [];
  const commit = (commit: boolean) =>
    Promise.allSettled(held.map(async (h) => {
      const res = await request(init.node, h.agent, LEASE_COMMIT_PROTOCOL, { hold: h.hold, commit }, {
        schema: LeaseCommitResponseSchema,
        ...opts(init, 60_000),
      });
      if (!res.ok) throw new Error(res.reason ?? "the held lease is gone");
      return res.tasks.map((t) => ({ ...(t as TaskStatus), agent: h.agent }));
    }));
  try {
    await leaseLoop(init, expanded, paths, ctx, held);
  } catch (err) {
    await commit(false);
    throw err;
  }
  const results = await commit(true);
  const placed: PlacedTask[] = results.flatMap((r) => r.status === "fulfilled" ? r.value : []);
  ctx.progress.done += placed.length;
  init.onProgress?.(ctx.progress.done, ctx.progress.total);
  const lost = results.map((r, i) => [r, held[i]!] as const).filter(([r]) => r.status === "rejected");
  if (lost.length > 0) {
    // An agent died between its hold and the commit: what started elsewhere is stopped by the caller.
    throw new CommanderError(
      `Cannot start ${paths.size - placed.length} task(s): ${
        lost.map(([r, h]) =>
          `the commit to agent ${h.agent} failed: ${errorText((r as PromiseRejectedResult).reason)}`
        )
          .join("; ")
      }`,
      placed,
    );
  }
  return placed;
}

async function leaseLoop(
  init: CommanderInit,
  expanded: ExpandedTopology,
  paths: Set<string>,
  ctx: Parameters<typeof placeAndLease>[3],
  held: { agent: string; hold: string }[],
): Promise<PlacedTask[]> {
  const shipper = new Shipper();
  const byPath = new Map<string, RuntimeTask>(expanded.tasks.map((t) => [t.path, t]));
  const specOf = (path: string) => {
    const spec = toTaskSpec(byPath.get(path)!, {
      topologyId: ctx.topologyId,
      sessionId: init.sessionId,
      shipper,
    });
    if (ctx.extraEnv) spec.extraEnv = { ...spec.extraEnv, ...ctx.extraEnv };
    return spec;
  };
  // Staged names the tasks declare: where they are, or the whole operation is refused before any lease.
  const stageSources = ctx.stageSources ??
    await locateDeclared(
      init.node,
      async () => aliveTargets(ctx.members ?? await fetchMembers(init)),
      [...paths].map(specOf),
      init.signal ? { signal: init.signal } : {},
    );
  const placed: PlacedTask[] = [];
  let remaining = new Set(paths);
  const dead = new Set<string>();
  /** Why lease requests failed (not refusals): said when nothing is left to place on. */
  const failures = new Map<string, string>();
  for (let attempt = 0; remaining.size > 0; attempt++) {
    // Refused leases mean our view of free slots was stale: give the membership updates a moment.
    if (attempt > 0) await (init.delay ?? sleep)(100 * attempt);
    const view = attempt === 0 && ctx.members ? ctx.members : await fetchMembers(init);
    const members = view.filter((m) => !dead.has(m.id));
    const plan = placeTasks(
      subset(expanded, remaining),
      toAgentSlots(members, attempt === 0 ? ctx.freed : undefined),
    );
    if (plan.unplaced.length > 0 || attempt >= 5) {
      const why =
        (plan.reasons.length ? plan.reasons.join("; ") : `${remaining.size} task(s) refused 5 times`) +
        [...failures].map(([agent, reason]) => `; the lease request to agent ${agent} failed: ${reason}`)
          .join("");
      throw new CommanderError(`Cannot place ${remaining.size} task(s): ${why}`, placed);
    }
    const byAgent = Map.groupBy(plan.assignments, (a) => a.agentId);
    const next = new Set<string>();
    const specsOf = new Map(
      [...byAgent].map(([agent, list]) => [agent, list.map((a) => specOf(a.taskPath))]),
    );
    // Large shipped files go ahead by staging (a swarm among the agents); leases carry references.
    const shipped = await stageLeaseFiles(init.node, specsOf, init.signal ? { signal: init.signal } : {});
    await Promise.all([...byAgent].map(async ([agent, list]) => {
      const specs: TaskSpec[] = specsOf.get(agent)!;
      const notStaged = shipped.failed.get(agent);
      if (notStaged !== undefined) {
        dead.add(agent);
        failures.set(agent, notStaged);
        for (const a of list) next.add(a.taskPath);
        return;
      }
      const stage = sourcesFor(specs, stageSources);
      try {
        const res = await request(init.node, agent, LEASE_PROTOCOL, {
          topologyId: ctx.topologyId,
          epoch: ctx.epoch,
          commander: init.node.peerId,
          ...packBlobs(specs, shipped.staged.get(agent)),
          ...(stage ? { stage } : {}),
          ...(ctx.hold ? { hold: true } : {}),
        }, { schema: LeaseResponseSchema, maxBytes: 64 * 1024 * 1024, ...opts(init, 60_000) });
        if (res.granted && ctx.hold) {
          if (!res.hold) {
            throw new Error("the agent started the tasks instead of holding them (an older shoal?)");
          }
          held.push({ agent, hold: res.hold });
        } else if (res.granted) {
          for (const t of res.tasks) placed.push({ ...(t as TaskStatus), agent });
          ctx.progress.done += res.tasks.length;
          init.onProgress?.(ctx.progress.done, ctx.progress.total);
        } else for (const a of list) next.add(a.taskPath);
      } catch (err) {
        dead.add(agent);
        failures.set(agent, errorText(err));
        for (const a of list) next.add(a.taskPath);
      }
    }));
    remaining = next;
  }
  return placed;
}

function summarize(
  topologyId: string,
  name: string,
  tasks: PlacedTask[],
  stopped: number,
  started: number,
): DeployResult {
  return {
    topologyId,
    name,
    tasks,
    agents: new Set(tasks.map((t) => t.agent)).size,
    started: tasks.filter((t) => t.state !== "failed").length,
    failed: tasks.filter((t) => t.state === "failed").length,
    stopped,
    elapsedMs: Math.round(performance.now() - started),
  };
}

function placementOf(tasks: readonly PlacedTask[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of tasks) (out[t.agent] ??= []).push(t.path);
  return out;
}

/** Stops `paths` (or everything) of a topology on the given agents (or all alive ones). */
export async function stopTasks(
  init: CommanderInit,
  topologyId: string,
  target: { byAgent?: Record<string, string[]>; graceMs?: number } = {},
): Promise<{ stopped: number; killed: number; unreachable: string[] }> {
  const agents = target.byAgent
    ? Object.keys(target.byAgent)
    : (await fetchMembers(init)).filter((m) => m.state === "alive").map((m) => m.id);
  const unreachable: string[] = [];
  let stopped = 0;
  let killed = 0;
  let answered = 0;
  init.onProgress?.(0, agents.length);
  await Promise.all(agents.map(async (agent) => {
    try {
      const res = await request(init.node, agent, STOP_PROTOCOL, {
        topologyId,
        ...(target.byAgent ? { paths: target.byAgent[agent] } : {}),
        ...(target.graceMs !== undefined ? { graceMs: target.graceMs } : {}),
      }, { schema: StopResponseSchema, ...opts(init, 60_000 + (target.graceMs ?? 5_000)) });
      stopped += res.stopped;
      killed += res.killed;
    } catch {
      unreachable.push(agent);
    }
    init.onProgress?.(++answered, agents.length);
  }));
  return { stopped, killed, unreachable };
}

/** Input of {@linkcode activateTopology} and {@linkcode updateTopology}. */
export interface TopologySource {
  /** Topology ID (default: the topology's name). */
  id?: string;
  file: string;
  source: string;
  vars: Record<string, string>;
  /** How a path that runs twice after a partition heals is reduced to one (default `keep_replacement`). */
  reconcile?: TopologyRecord["reconcile"];
}

/** Options of {@linkcode activateTopology}. */
export interface ActivateOptions {
  /** Keeps the tasks started now to some paths (environments start the others later, with {@linkcode startPaths}). */
  only?: (path: string) => boolean;
  /**
   * Reserve every agent's slots first and start the tasks only once all are granted, so no task of a
   * topology that does not fit runs even briefly (one more round trip per agent; the pool's activations).
   * Without it, what was started is stopped again when the rest cannot be placed.
   */
  hold?: boolean;
}

/** Activates a topology: all tasks run, or nothing does. */
export async function activateTopology(
  init: CommanderInit,
  src: TopologySource,
  options: ActivateOptions = {},
): Promise<DeployResult> {
  const started = performance.now();
  const expanded = expandRecord(src);
  const topologyId = src.id ?? expanded.name.replace(/[^A-Za-z0-9#@~_-]/g, "_");
  // Two independent round trips: ask both at once.
  const [records, members] = await Promise.all([fetchTopologies(init), fetchMembers(init)]);
  const existing = records.find((r) => r.id === topologyId);
  if (existing?.state === "active") {
    throw new CommanderError(
      `Topology "${topologyId}" is already active; update it with \`shoal topology update\`, stop it, or give another --id`,
    );
  }
  const epoch = (existing?.epoch ?? 0) + 1;
  const only = options.only;
  const paths = new Set(expanded.tasks.map((t) => t.path).filter((p) => !only || only(p)));
  const progress = { done: 0, total: paths.size };
  init.onProgress?.(0, paths.size);
  let tasks: PlacedTask[];
  try {
    tasks = await placeAndLease(init, expanded, paths, {
      topologyId,
      epoch,
      progress,
      members,
      ...(options.hold ? { hold: true } : {}),
    });
  } catch (err) {
    // All or nothing: what did start is stopped again.
    if (err instanceof CommanderError && err.placed.length > 0) {
      await stopTasks(init, topologyId, { byAgent: placementOf(err.placed), graceMs: 1_000 });
    }
    throw err;
  }
  await putTopology(init, {
    id: topologyId,
    name: expanded.name,
    epoch,
    version: 1,
    commander: init.node.peerId,
    state: "active",
    source: src.source,
    file: src.file,
    vars: src.vars,
    placement: placementOf(tasks),
    updatedAt: Date.now(),
    members: members.filter((m) => m.state === "alive").map((m) => m.id),
    ...(src.reconcile ? { reconcile: src.reconcile } : {}),
  });
  return summarize(topologyId, expanded.name, tasks, 0, started);
}

/**
 * Starts more tasks of an active topology (named paths, with extra environment variables) and records
 * where they run; all or none, like activation.
 */
export async function startPaths(
  init: CommanderInit,
  id: string,
  paths: string[],
  options: { extraEnv?: Record<string, string>; hold?: boolean } = {},
): Promise<PlacedTask[]> {
  if (paths.length === 0) return [];
  const record = await activeRecord(init, id);
  const progress = { done: 0, total: paths.length };
  let tasks: PlacedTask[];
  try {
    tasks = await placeAndLease(init, expandRecord(record), new Set(paths), {
      topologyId: record.id,
      epoch: record.epoch,
      progress,
      ...(options.extraEnv ? { extraEnv: options.extraEnv } : {}),
      ...(options.hold ? { hold: true } : {}),
    });
  } catch (err) {
    if (err instanceof CommanderError && err.placed.length > 0) {
      await stopTasks(init, record.id, { byAgent: placementOf(err.placed), graceMs: 1_000 });
    }
    throw err;
  }
  const latest = await activeRecord(init, id);
  const placement: Record<string, string[]> = {};
  for (const [agent, list] of Object.entries(latest.placement)) placement[agent] = [...list];
  for (const t of tasks) (placement[t.agent] ??= []).push(t.path);
  await putTopology(init, { ...latest, version: latest.version + 1, placement, updatedAt: Date.now() });
  return tasks;
}

/** Stops named tasks of an active topology and drops them from its placement. */
export async function stopPaths(
  init: CommanderInit,
  id: string,
  paths: string[],
  options: { graceMs?: number } = {},
): Promise<{ stopped: number; killed: number; unreachable: string[] }> {
  const record = await activeRecord(init, id);
  const drop = new Set(paths);
  const byAgent: Record<string, string[]> = {};
  const placement: Record<string, string[]> = {};
  for (const [agent, list] of Object.entries(record.placement)) {
    const gone = list.filter((p) => drop.has(p));
    if (gone.length) byAgent[agent] = gone;
    const kept = list.filter((p) => !drop.has(p));
    if (kept.length) placement[agent] = kept;
  }
  if (Object.keys(byAgent).length === 0) return { stopped: 0, killed: 0, unreachable: [] };
  // As in an update: the record lets go of them before they stop, so that it never lists a task that no
  // longer runs, and names them while they stop, so that no agent adopts them back.
  const { removing: _r, ...base } = record;
  await putTopology(init, {
    ...base,
    version: record.version + 1,
    placement,
    removing: [...drop],
    updatedAt: Date.now(),
  });
  const res = await stopTasks(init, record.id, {
    byAgent,
    ...(options.graceMs !== undefined ? { graceMs: options.graceMs } : {}),
  });
  // Done: the record stops naming them (a topology stopped meanwhile has nothing to tidy).
  const latest = await activeRecord(init, id).catch(() => undefined);
  if (latest?.removing) {
    const { removing: _s, ...rest } = latest;
    await putTopology(init, { ...rest, version: latest.version + 1, updatedAt: Date.now() });
  }
  return res;
}

/** The active record of `id`, or of the only active topology when `id` is absent. */
export async function activeRecord(init: CommanderInit, id?: string): Promise<TopologyRecord> {
  const active = (await fetchTopologies(init)).filter((r) => r.state === "active");
  if (id) {
    const r = active.find((x) => x.id === id);
    if (!r) {
      const names = active.map((x) => `"${x.id}"`).join(", ") || "none";
      throw new CommanderError(`No active topology "${id}" (active: ${names})`);
    }
    return r;
  }
  if (active.length === 1) return active[0]!;
  if (active.length === 0) {
    throw new CommanderError("No topology is active; activate one with `shoal topology activate FILE`");
  }
  throw new CommanderError(
    `${active.length} topologies are active (${
      active.map((r) => `"${r.id}"`).join(", ")
    }); name one with --id`,
  );
}

/** Stops every task of a topology and marks it stopped. */
export async function stopTopology(
  init: CommanderInit,
  id?: string,
  options: { graceMs?: number } = {},
): Promise<
  { topologyId: string; stopped: number; killed: number; unreachable: string[]; elapsedMs: number }
> {
  const started = performance.now();
  const record = await activeRecord(init, id);
  const res = await stopTasks(
    init,
    record.id,
    options.graceMs !== undefined ? { graceMs: options.graceMs } : {},
  );
  await putTopology(init, {
    ...record,
    state: "stopped",
    version: record.version + 1,
    updatedAt: Date.now(),
    placement: {},
  });
  return { topologyId: record.id, ...res, elapsedMs: Math.round(performance.now() - started) };
}

/**
 * Updates an active topology as DDS does: stops removed tasks, starts added ones, leaves unchanged ones
 * running. An update that cannot be placed is refused before anything is stopped.
 */
export async function updateTopology(
  init: CommanderInit,
  src: TopologySource,
): Promise<DeployResult & { removed: string[]; added: string[] }> {
  const started = performance.now();
  const record = await activeRecord(init, src.id);
  const before = expandRecord(record);
  const after = expandRecord(src);
  const diff = diffTopologies(before, after);
  const removed = new Set(diff.removedTasks);
  const owner = new Map<string, string>();
  for (const [agent, list] of Object.entries(record.placement)) for (const p of list) owner.set(p, agent);
  const freed = new Map<string, number>();
  const byAgent: Record<string, string[]> = {};
  for (const p of removed) {
    const a = owner.get(p);
    if (!a) continue;
    freed.set(a, (freed.get(a) ?? 0) + 1);
    (byAgent[a] ??= []).push(p);
  }
  const added = new Set(diff.addedTasks);
  const view = await fetchMembers(init);
  const check = placeTasks(subset(after, added), toAgentSlots(view, freed));
  if (check.unplaced.length > 0) {
    throw new CommanderError(`Update refused, nothing was stopped: ${check.reasons.join("; ")}`);
  }
  const shipper = new Shipper();
  const stageSources = await locateDeclared(
    init.node,
    () => Promise.resolve(aliveTargets(view)),
    after.tasks.filter((t) => added.has(t.path)).map((t) =>
      toTaskSpec(t, { topologyId: record.id, sessionId: init.sessionId, shipper })
    ),
    init.signal ? { signal: init.signal } : {},
  ).catch((err) => {
    throw err instanceof CommanderError
      ? new CommanderError(`Update refused, nothing was stopped: ${err.message}`, [], { cause: err })
      : err;
  });
  const progress = { done: 0, total: added.size };
  init.onProgress?.(0, added.size);
  const quiet = { ...init, onProgress: undefined };
  const placement: Record<string, string[]> = {};
  for (const [agent, list] of Object.entries(record.placement)) {
    const kept = list.filter((p) => !removed.has(p));
    if (kept.length) placement[agent] = kept;
  }
  let version = record.version;
  if (removed.size > 0) {
    // The record drops the removed tasks before they stop: a commander killed from here on leaves a record
    // that lists only running tasks (the added ones it started are not in it, so their agents stop them
    // after the orphan grace), and the same update run again finishes the job.
    await putTopology(init, {
      ...record,
      version: ++version,
      placement: { ...placement },
      updatedAt: Date.now(),
    });
  }
  const stop = removed.size ? await stopTasks(quiet, record.id, { byAgent }) : { stopped: 0, killed: 0 };
  const tasks = added.size
    ? await placeAndLease(init, after, added, {
      topologyId: record.id,
      epoch: record.epoch,
      progress,
      stageSources,
    })
    : [];
  for (const t of tasks) (placement[t.agent] ??= []).push(t.path);
  const { removing: _done, ...base } = record;
  await putTopology(init, {
    ...base,
    name: after.name,
    version: version + 1,
    source: src.source,
    file: src.file,
    vars: src.vars,
    placement,
    updatedAt: Date.now(),
    members: view.filter((m) => m.state === "alive").map((m) => m.id),
  });
  return {
    ...summarize(record.id, after.name, tasks, stop.stopped, started),
    removed: diff.removedTasks,
    added: diff.addedTasks,
  };
}

/** Result of {@linkcode recoverTopology}. */
export interface RecoverResult {
  topologyId: string;
  epoch: number;
  placed: PlacedTask[];
  /** Paths that could not be placed anywhere. */
  lost: string[];
  reasons: string[];
}

/** Options of {@linkcode recoverTopology}. */
export interface RecoverOptions {
  /** The epoch claimed for this recovery (`claims.ts`; default the record's plus one). */
  epoch?: number;
  /** The agents alive in the recovering agent's view: the membership of the new record. */
  members?: string[];
  /** Paths of a live agent that it no longer runs (it restarted), re-placed like a dead agent's. */
  missing?: { agent: string; paths: readonly string[] };
}

/**
 * Takes over a topology whose agents `dead` died: re-places their tasks on free slots under a new epoch
 * (agents then refuse the old commander's leases), keeps what could not be placed as lost, and records the
 * result — one record for every agent lost in the same sweep, none of them listed in it any more.
 */
export async function recoverTopology(
  init: CommanderInit,
  record: TopologyRecord,
  dead: string | readonly string[],
  options: RecoverOptions = {},
): Promise<RecoverResult> {
  const gone = typeof dead === "string" ? [dead] : [...dead];
  const missing = new Set(options.missing?.paths ?? []);
  const lostPaths = [...gone.flatMap((d) => record.placement[d] ?? []), ...missing];
  const epoch = options.epoch ?? record.epoch + 1;
  let placed: PlacedTask[] = [];
  const reasons: string[] = [];
  if (lostPaths.length > 0) {
    try {
      placed = await placeAndLease(init, expandRecord(record), new Set(lostPaths), {
        topologyId: record.id,
        epoch,
        progress: { done: 0, total: lostPaths.length },
      });
    } catch (err) {
      if (!(err instanceof CommanderError)) throw err;
      placed = [...err.placed];
      reasons.push(err.message);
    }
  }
  const placement: Record<string, string[]> = { ...record.placement };
  for (const d of gone) delete placement[d];
  if (options.missing) {
    const a = options.missing.agent;
    const rest = (placement[a] ?? []).filter((p) => !missing.has(p));
    if (rest.length > 0) placement[a] = rest;
    else delete placement[a];
  }
  for (const t of placed) (placement[t.agent] ??= []).push(t.path);
  await putTopology(init, {
    ...record,
    epoch,
    version: record.version + 1,
    commander: init.node.peerId,
    placement,
    updatedAt: Date.now(),
    ...(options.members ? { members: options.members.filter((m) => !gone.includes(m)) } : {}),
  });
  const done = new Set(placed.map((t) => t.path));
  return { topologyId: record.id, epoch, placed, lost: lostPaths.filter((p) => !done.has(p)), reasons };
}

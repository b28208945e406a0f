/**
 * The shoal agent: the daemon on every node. It joins the mesh, announces its slots and keeps a
 * membership view; later areas hang the task runner and the task API on it.
 *
 * @module
 */
import { hostname, loadavg } from "node:os";
import {
  createMeshNode,
  DEFAULT_TIMING,
  EVENTS_TOPIC,
  loadOrCreateIdentity,
  type Membership,
  type MeshNode,
  SHOAL_VERSION,
  startBootstrap,
  startMembership,
} from "../mesh/mod.ts";
import type { Bootstrap } from "../mesh/mod.ts";
import { DesiredState } from "./desired/mod.ts";
import { EventBatcher } from "./event_batcher.ts";
import { type Failover, startFailover } from "./desired/mod.ts";
import { ClaimTable, serveClaims } from "./desired/mod.ts";
import type { Logger } from "./log.ts";
import { startLogService } from "./runner/mod.ts";
import { createTaskRunner, type TaskRunner } from "./runner/mod.ts";
import { SlotTable } from "./leases/mod.ts";
import { writeStateFile } from "./state_file.ts";
import type { OrphanLeases } from "./leases/mod.ts";
import { startTaskService } from "./leases/mod.ts";
import { syncDesiredOnDigest } from "./desired/mod.ts";
import { syncOnReturn } from "./kv/mod.ts";
import type { KvReplication } from "./kv/mod.ts";
import type { KvStore } from "./kv/mod.ts";
import type { TaskApi } from "./task_api/mod.ts";
import { startTalk, type Talk } from "./talk.ts";
import { type AgentCommands, agentStatus, startAgentCommands } from "./commands/mod.ts";
import { METRICS_LABEL, type MetricsServer } from "../metrics/mod.ts";
import { serveAgentMetrics } from "./metrics.ts";
import { startTaskUsageService } from "./runner/mod.ts";
// Not through env/mod.ts: that also exports the controller, which imports this area (a cycle).
import { type EnvService, startEnvService } from "../env/service.ts";
import { collRoute, type CollService, startCollService } from "../coll/mod.ts";
// Not through stage/mod.ts: that also exports the tools' client; the service is what an agent runs.
import { stageDir, type StageService, startStageService } from "../stage/service.ts";
import { createStageFetcher } from "../stage/declared.ts";
// Not through pool/mod.ts either, for the same reason.
import {
  HEALTH_LABEL,
  healthFromLabels,
  HealthMonitor,
  type HealthOptions,
  systemProbe,
} from "../pool/health.ts";
import { IDLE_TIMEOUT_LABEL, IdleWatch } from "../pool/idle.ts";
import { type PoolService, startPoolService } from "../pool/service.ts";

/** Options for {@linkcode startAgent}. */
export interface AgentInit {
  /** Holds the peer key (stable identity) and `agent.json`. */
  dataDir: string;
  swarmKey: Uint8Array;
  /** Listen multiaddrs (default `/ip4/0.0.0.0/tcp/0`). */
  listen?: string[];
  /** Peers to reach the mesh through. */
  bootstrap?: string[];
  /** Task slots offered (default 1). */
  slots?: number;
  /** Host name announced (default the OS host name). */
  host?: string;
  /** Group name (DDS `-g`, `groupname` requirement). */
  group?: string;
  gpus?: number;
  labels?: Record<string, string>;
  log: Logger;
  /** Membership probe period (default 2 s; see `mesh/swim_timing.ts`). */
  probeIntervalMs?: number;
  /**
   * How long a commander may be gone before the tasks it started for a topology it never recorded are
   * stopped (default 15 s; see `orphan_leases.ts`).
   */
  orphanGraceMs?: number;
  /** How long after its death an agent's tasks count as lost (default 0; see `failover.ts`). */
  lostAfterMs?: number;
  /** A side of a partition in a minority this long stops its own tasks (default: never). */
  stopOnMinorityAfterMs?: number;
  /** `DDS_SESSION_ID` given to tasks. */
  sessionId?: string;
  /** Grace period between SIGTERM and SIGKILL when stopping tasks (default 5 s, as DDS). */
  taskGraceMs?: number;
  /** The log file the logger writes, for the `getlog` agent command. */
  logFile?: string;
  /**
   * Executable that answers agent commands other than the built-in ones (absolute path): the payload on
   * stdin, `SHOAL_COMMAND_SENDER` in the environment, the reply on stdout.
   */
  commandHandler?: string;
  /** Longest run of the command handler (default 30 s). */
  commandTimeoutMs?: number;
  /** Serve Prometheus metrics on this `HOST:PORT` (port 0 picks one); announced as a member label. */
  metrics?: string;
  /** Bytes staged data may take in the content cache before the least recently used goes (default 16 GiB). */
  stageCacheMaxBytes?: number;
  /** When to stop taking leases (`--min-free-disk`, `--max-load`; see `pool/health.ts`). */
  health?: HealthOptions;
  /**
   * Leave the mesh once no lease was held this long (`--idle-timeout`, or the label the pool gives the
   * agents it grows); then {@linkcode Agent.idle} resolves. Default: never.
   */
  idleTimeoutMs?: number;
}

/** A running agent. */
export class Agent implements AsyncDisposable {
  readonly node: MeshNode;
  readonly membership: Membership;
  readonly runner: TaskRunner;
  readonly slots: SlotTable;
  readonly desired: DesiredState;
  /** This agent's key-value replica. */
  readonly kv: KvStore;
  /** The Unix-socket API of this agent's tasks. */
  readonly taskApi: TaskApi;
  readonly #talk: Talk;
  /** Environments (AliECS state machine) replicated here. */
  readonly env: EnvService;
  /** Collectives among this agent's tasks and along the tree of agents. */
  readonly coll: CollService;
  /** Staged data held here (`$SHOAL_STAGE`). */
  readonly stage: StageService;
  /** The pool's queue and, on the scheduler, its scheduling. */
  readonly pool: PoolService;
  /** Why this agent takes no leases now (undefined: it does). */
  get unhealthy(): string | undefined {
    return this.slots.refusing;
  }
  /** Resolves when the agent has been idle past its idle timeout (never without one). */
  readonly idle: Promise<void>;
  readonly #agentCommands: AgentCommands;
  readonly #events: EventBatcher;
  readonly #orphans: OrphanLeases | undefined;
  readonly #bootstrap: Bootstrap;
  readonly #init: AgentInit;
  readonly #startedAt: number;
  readonly #onStop: (() => void) | undefined;
  /** The Prometheus endpoint, when started with `metrics`. */
  readonly metrics: MetricsServer | undefined;
  #stopping: Promise<void> | undefined;

  constructor(
    init: AgentInit,
    parts: {
      node: MeshNode;
      membership: Membership;
      bootstrap: Bootstrap;
      runner: TaskRunner;
      slots: SlotTable;
      desired: DesiredState;
      talk: Talk;
      env: EnvService;
      coll: CollService;
      stage: StageService;
      pool: PoolService;
      idle: Promise<void>;
      agentCommands: AgentCommands;
      /** The coalesced event publisher: flushed last, after the tasks' exits were queued. */
      events: EventBatcher;
      orphans?: OrphanLeases;
      metrics?: MetricsServer;
      startedAt: number;
      /** Called first when the agent stops. */
      onStop?: () => void;
    },
  ) {
    this.#onStop = parts.onStop;
    this.#init = init;
    this.node = parts.node;
    this.membership = parts.membership;
    this.#bootstrap = parts.bootstrap;
    this.runner = parts.runner;
    this.slots = parts.slots;
    this.desired = parts.desired;
    this.kv = parts.talk.kv;
    this.taskApi = parts.talk.taskApi;
    this.#talk = parts.talk;
    this.env = parts.env;
    this.coll = parts.coll;
    this.stage = parts.stage;
    this.pool = parts.pool;
    this.idle = parts.idle;
    this.#agentCommands = parts.agentCommands;
    this.#events = parts.events;
    this.#orphans = parts.orphans;
    this.#startedAt = parts.startedAt;
    this.metrics = parts.metrics;
  }

  /** This agent's peer ID. */
  get id(): string {
    return this.node.peerId;
  }

  /** Resolves once the agent reached the mesh. */
  get joined(): Promise<void> {
    return this.#bootstrap.joined;
  }

  /** Writes `agent.json` for tools on this host. */
  async writeState(status: "running" | "stopped"): Promise<void> {
    await writeStateFile(this.#init.dataDir, {
      peerId: this.id,
      pid: process.pid,
      addrs: this.node.addresses(),
      startedAt: this.#startedAt,
      joined: this.#bootstrap.isJoined,
      status,
      version: SHOAL_VERSION,
    });
  }

  /** Leaves the mesh and closes every connection. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#init.log.info("agent stopping", { id: this.id });
      this.#onStop?.();
      this.#bootstrap.stop();
      this.#orphans?.close();
      const tasks = await this.runner.stopAll().catch((err) => {
        this.#init.log.error("stopping tasks failed", { err });
        return { stopped: 0, killed: 0 };
      });
      if (tasks.stopped + tasks.killed > 0) this.#init.log.info("tasks stopped", { ...tasks });
      this.desired.stop();
      this.env.stop();
      this.coll.stop();
      await this.stage.stop();
      this.pool.stop();
      this.#agentCommands.close();
      await this.metrics?.close();
      await this.#talk.stop();
      await this.#events.stop();
      // Best effort: the membership's leave that follows is what peers act on.
      await this.node.publish(EVENTS_TOPIC, { type: "agent:stopping", at: Date.now(), by: this.id })
        .catch(() => {});
      await this.membership.stop();
      await this.node.stop();
      await this.writeState("stopped").catch(() => {});
      this.#init.log.info("agent stopped", { id: this.id });
    })();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Starts an agent; it keeps trying to reach its bootstrap peers in the background. */
export async function startAgent(init: AgentInit): Promise<Agent> {
  const log = init.log;
  const privateKey = await loadOrCreateIdentity(init.dataDir);
  const node = await createMeshNode({
    swarmKey: init.swarmKey,
    privateKey,
    listen: init.listen ?? ["/ip4/0.0.0.0/tcp/0"],
    onMalformed: (what, err) => {
      // A request that never came within the deadline is a timeout, not a malformed message.
      const name = (err as Error | undefined)?.name;
      if (name === "TimeoutError" || name === "AbortError") {
        log.warn("request timed out before it was read", { on: what, reason: (err as Error).message });
      } else {log.warn("dropped malformed message", {
          on: what,
          reason: err instanceof Error ? err.message : err,
        });}
    },
    onStreamError: (what, err) =>
      log.warn("could not answer on a stream", {
        on: what,
        reason: err instanceof Error ? err.message : err,
      }),
  });
  const slots = new SlotTable(init.slots ?? 1);
  const host = init.host ?? hostname();
  const runner = createTaskRunner({
    workDir: init.dataDir,
    log,
    env: { SHOAL_STAGE: stageDir(init.dataDir) },
    ...(init.taskGraceMs !== undefined ? { graceMs: init.taskGraceMs } : {}),
  });
  const ref: { agent?: Agent } = {};
  let idleWatch: IdleWatch | undefined;
  let load = currentLoad();
  let metricsAddress: string | undefined;
  const membership = await startMembership({
    node,
    ...(init.probeIntervalMs
      ? {
        timing: {
          probeIntervalMs: init.probeIntervalMs,
          probeTimeoutMs: Math.min(DEFAULT_TIMING.probeTimeoutMs, init.probeIntervalMs / 2),
        },
      }
      : {}),
    self: () => ({
      host,
      slots: { total: slots.total, free: slots.offered },
      version: SHOAL_VERSION,
      load,
      ...(init.gpus ? { gpus: init.gpus } : {}),
      ...(init.labels || metricsAddress || slots.refusing
        ? {
          labels: {
            ...init.labels,
            ...(metricsAddress ? { [METRICS_LABEL]: metricsAddress } : {}),
            ...(slots.refusing ? { [HEALTH_LABEL]: slots.refusing } : {}),
          },
        }
        : {}),
      ...(init.group ? { group: init.group } : {}),
    }),
  });
  membership.events.on((e) => log.info(e.type, { peer: e.id, host: e.host }));
  // Its own options win over what the plug-in that started it passed in labels.
  const fromLabels = healthFromLabels(init.labels);
  if (fromLabels.bad.length) {
    log.warn("ignoring health labels that are not numbers", { labels: fromLabels.bad });
  }
  const health = new HealthMonitor(systemProbe(init.dataDir), {
    ...fromLabels.options,
    ...init.health,
    onUnreadable: (why) =>
      log.warn("cannot read the data disk's free space; --min-free-disk not checked", { why }),
    onChange: (reason) => {
      slots.refusing = reason;
      if (reason) log.warn("taking no leases", { reason });
      else log.info("taking leases again");
      membership.announce();
      void node.publish(EVENTS_TOPIC, {
        type: reason ? "agent:unhealthy" : "agent:healthy",
        at: Date.now(),
        by: node.peerId,
        host,
        ...(reason ? { reason } : {}),
        // The event is for monitors; the membership update above is what placement uses.
      }).catch(() => {});
    },
  });
  // Load travels when it changed noticeably, not every second, and lazily: it is for people to read, and
  // every agent of a host sees it change at the same moment.
  const loadTimer = setInterval(() => {
    const now = currentLoad();
    if (Math.abs(now - load) < Math.max(0.5, load * 0.25)) return;
    load = now;
    membership.announce({ lazy: true });
  }, 10_000);
  loadTimer.unref?.();
  const desired = new DesiredState(node);
  await desired.start();
  syncDesiredOnDigest({ node, membership, desired, log });
  const events = new EventBatcher(node);
  const claims = new ClaimTable();
  await serveClaims({ node, desired, claims, members: () => membership.members() });
  const fo: { failover?: Failover } = {};
  const talk = await startTalk({ node, membership, desired, runner, host });
  const env = await startEnvService({
    node,
    membership,
    commands: talk.commands,
    taskEvents: runner.events,
    log,
    dataDir: init.dataDir,
    topology: (id) => desired.get(id),
  });
  const pool = await startPoolService({
    node,
    membership,
    desired,
    taskEvents: runner.events,
    log,
    sessionId: init.sessionId ?? "",
    envRecords: env.records,
  });
  talk.taskApi.onGoError = (task, message) => env.taskError(task.topologyId, task.path, message);
  const coll = await startCollService({ node, membership, records: desired, taskEvents: runner.events, log });
  talk.taskApi.routes.set("coll", collRoute(coll));
  const unsyncReturn = syncOnReturn({ membership, desired, replication: talk.replication, log });
  const startedAt = Date.now();
  const agentCommands = startAgentCommands({
    commands: talk.commands,
    log,
    peerId: node.peerId,
    host,
    status: () =>
      agentStatus({
        peerId: node.peerId,
        host,
        version: SHOAL_VERSION,
        startedAt,
        load: currentLoad,
        slots,
        tasks: () => runner.list(),
        members: () => membership.members(),
        peers: () => node.connectedPeers().length,
        swim: () => ({
          links: membership.swim?.links().length ?? 0,
          probeTimeoutMs: membership.swim?.probeTimeoutMs ?? 0,
          ...(membership.swim?.counters ?? { sent: 0, received: 0 }),
          connections: membership.connectionCounts,
        }),
        ...(init.group ? { group: init.group } : {}),
        ...(init.labels ? { labels: init.labels } : {}),
        ...(init.gpus ? { gpus: init.gpus } : {}),
        ...(init.logFile ? { logFile: init.logFile } : {}),
        ...(init.commandHandler ? { commandHandler: init.commandHandler } : {}),
      }),
    ...(init.logFile ? { logFile: init.logFile } : {}),
    ...(init.commandHandler ? { handler: init.commandHandler } : {}),
    ...(init.commandTimeoutMs !== undefined ? { handlerTimeoutMs: init.commandTimeoutMs } : {}),
  });
  const stage = await startStageService({
    node,
    workDir: init.dataDir,
    host,
    log,
    ...(init.stageCacheMaxBytes !== undefined ? { cacheMaxBytes: init.stageCacheMaxBytes } : {}),
  });
  const declared = createStageFetcher({ node, stage });
  const service = await startTaskService({
    node,
    runner,
    slots,
    events,
    log,
    host,
    taskApi: talk.taskApi,
    onSlotsChanged: () => {
      idleWatch?.touch();
      membership.announce();
    },
    desired,
    minority: () => fo.failover?.minority() ?? [],
    staged: {
      path: (ref, mode) => stage.contentPath(ref.id, mode),
      hold: (owner, refs) => stage.hold(owner, refs),
      release: (owner) => stage.release(owner),
      use: (owner, names) => stage.use(owner, names),
      present: (name, source) => declared.present(name, source),
      fetch: (name, source) => declared.fetch(name, source),
    },
    ...(init.orphanGraceMs !== undefined ? { orphanGraceMs: init.orphanGraceMs } : {}),
  });
  const orphans = service.orphans;
  const idleMs = init.idleTimeoutMs ?? (Number(init.labels?.[IDLE_TIMEOUT_LABEL]) || undefined);
  const idle = new Promise<void>((resolve) => {
    if (!idleMs) return;
    idleWatch = new IdleWatch({
      timeoutMs: idleMs,
      // Not idle while a topology waits in the queue: an agent grown for it would otherwise leave while
      // the rest of the room it waits for is still joining, and be submitted again.
      busy: () => slots.free < slots.total || pool.hasWaiting(),
      onIdle: (ms) => {
        log.info("idle past the idle timeout; leaving the mesh", { idleMs: ms, timeoutMs: idleMs });
        resolve();
      },
    });
  });
  fo.failover = startFailover({
    node,
    membership,
    desired,
    claims,
    events,
    log,
    host,
    sessionId: init.sessionId ?? "",
    stopLocal: (topologyId) => service.stopLocal(topologyId),
    holdsTasks: (topologyId) => slots.leased(topologyId).length > 0,
    missingHere: (r) => (r.placement[node.peerId] ?? []).filter((p) => !slots.wasLeased(r.id, p)),
    ...(init.lostAfterMs !== undefined ? { lostAfterMs: init.lostAfterMs } : {}),
    ...(init.stopOnMinorityAfterMs !== undefined
      ? { stopOnMinorityAfterMs: init.stopOnMinorityAfterMs }
      : {}),
  });
  await startLogService({ node, runner, workDir: init.dataDir });
  await startTaskUsageService({ node, runner, host });
  const metrics = init.metrics !== undefined
    ? await serveAgentMetrics(init.metrics, { node, membership, runner, slots, talk })
    : undefined;
  if (metrics) {
    metricsAddress = metrics.address;
    membership.announceNow();
  }
  const bootstrap = startBootstrap({
    node,
    addrs: init.bootstrap ?? [],
    onJoined: () => {
      log.info("joined the mesh", { peers: node.connectedPeers().length });
      void ref.agent?.writeState("running").catch((err) =>
        log.warn("could not write the state file; `shoal info` may show this agent as starting", {
          reason: (err as Error).message,
        })
      );
      void syncOnJoin(node, desired, log);
      void syncKvOnJoin(node, talk.replication, log);
      void syncEnvOnJoin(node, env, log);
      void syncPoolOnJoin(node, pool, log);
    },
    onRetry: (errors, next) =>
      log.warn("cannot reach any bootstrap peer yet; retrying", {
        in: `${next}ms`,
        first: `${errors[0]?.addr}: ${errors[0]?.error}`,
      }),
  });
  const agent = new Agent(init, {
    node,
    membership,
    bootstrap,
    runner,
    slots,
    desired,
    talk,
    env,
    coll,
    stage,
    pool,
    idle,
    agentCommands,
    events,
    ...(orphans ? { orphans } : {}),
    ...(metrics ? { metrics } : {}),
    startedAt,
    onStop: () => {
      clearInterval(loadTimer);
      health[Symbol.dispose]();
      idleWatch?.[Symbol.dispose]();
      fo.failover?.close();
      unsyncReturn();
      service.close();
    },
  });
  ref.agent = agent;
  await agent.writeState("running");
  log.info("agent listening", {
    id: agent.id,
    addrs: node.addresses().join(","),
    slots: slots.total,
    host,
    ...(metrics ? { metrics: metrics.address } : {}),
  });
  void node.publish(EVENTS_TOPIC, {
    type: "agent:started",
    at: Date.now(),
    by: agent.id,
    host,
    slots: slots.total,
  })
    // For monitors only: the membership's join is what peers act on.
    .catch(() => {});
  return agent;
}

/** The 1-minute load average, to two decimals. */
function currentLoad(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

/** Pulls the desired state from the first connected peer that serves it (light peers do not). */
async function syncOnJoin(node: MeshNode, desired: DesiredState, log: Logger): Promise<void> {
  for (const peer of node.connectedPeers()) {
    try {
      const n = await desired.syncFrom(peer, { signal: AbortSignal.timeout(10_000) });
      if (n > 0) log.info("synced topologies on join", { from: peer, records: n });
      return;
    } catch { /* try the next peer */ }
  }
}

/** Pulls (and pushes) key-value state from the first connected agent that serves it. */
async function syncKvOnJoin(node: MeshNode, replication: KvReplication, log: Logger): Promise<void> {
  for (const peer of node.connectedPeers()) {
    try {
      const n = await replication.syncWith(peer, { signal: AbortSignal.timeout(10_000) });
      if (n > 0) log.info("synced key-values on join", { from: peer, entries: n });
      return;
    } catch { /* try the next peer */ }
  }
}

/** Pulls environment records from the first connected agent that serves them. */
async function syncEnvOnJoin(node: MeshNode, env: EnvService, log: Logger): Promise<void> {
  for (const peer of node.connectedPeers()) {
    try {
      const n = await env.records.syncFrom(peer, { signal: AbortSignal.timeout(10_000) });
      if (n > 0) log.info("synced environments on join", { from: peer, records: n });
      return;
    } catch { /* try the next peer */ }
  }
}

/** Pulls the pool's queue from the first connected agent that serves it. */
async function syncPoolOnJoin(node: MeshNode, pool: PoolService, log: Logger): Promise<void> {
  for (const peer of node.connectedPeers()) {
    try {
      const n = await pool.records.syncFrom(peer, { signal: AbortSignal.timeout(10_000) });
      if (n > 0) log.info("synced the pool's queue on join", { from: peer, entries: n });
      return;
    } catch { /* try the next peer */ }
  }
}

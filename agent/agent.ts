/**
 * The shoal agent: the daemon on every node. `startAgent` builds its parts (`mesh/startable.ts`) in
 * dependency order from the narrow collaborators each needs, starts them in that order and stops them in
 * reverse; the parts themselves live in the sub-areas, `parts.ts` and `services.ts`.
 *
 * @module
 */
import { hostname } from "node:os";
import {
  Bootstrap,
  createMeshNode,
  DEFAULT_TIMING,
  loadOrCreateIdentity,
  Membership,
  type MeshNode,
  type Service,
  type Startable,
  startable,
  startAll,
  stopAll,
} from "../mesh/mod.ts";
import { ClaimTable, DesiredState } from "./desired/mod.ts";
import { EventBatcher } from "./event_batcher.ts";
import type { Logger } from "./log.ts";
import { createTaskRunner, type TaskRunner } from "./runner/mod.ts";
import { SlotTable } from "./leases/mod.ts";
import type { KvStore } from "./kv/mod.ts";
import type { TaskApi } from "./task_api/mod.ts";
import type { Talk } from "./talk.ts";
import type { MetricsServer } from "../metrics/mod.ts";
import type { EnvService } from "../env/service.ts";
import type { CollService } from "../coll/mod.ts";
import { stageDir, type StageService } from "../stage/service.ts";
import type { HealthOptions } from "../pool/health.ts";
import { IDLE_TIMEOUT_LABEL } from "../pool/idle.ts";
import type { PoolService } from "../pool/service.ts";
import {
  createHealthPart,
  createIdlePart,
  createJoinSyncPart,
  createLoadPart,
  createPresencePart,
  createSelfAnnouncement,
  createStateFilePart,
  type IdlePart,
  type JoinSource,
  type StateFilePart,
} from "./parts.ts";
import {
  createAgentCommandsPart,
  createClaimsPart,
  createCollPart,
  createDesiredPart,
  createDesiredSyncPart,
  createEnvPart,
  createEventsPart,
  createFailoverPart,
  createHealSyncPart,
  createLogServicePart,
  createMembershipPart,
  createMetricsPart,
  createNodePart,
  createPoolPart,
  createRunnerPart,
  createStagePart,
  createTalkPart,
  createTaskServicePart,
  createUsagePart,
  pickDefined,
} from "./services.ts";

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

/** What an {@linkcode Agent} is made of, built by {@linkcode startAgent}. */
interface AgentParts {
  node: MeshNode;
  membership: Membership;
  bootstrap: Bootstrap;
  runner: TaskRunner;
  slots: SlotTable;
  desired: DesiredState;
  talk: Service<Talk>;
  env: Service<EnvService>;
  coll: Service<CollService>;
  stage: Service<StageService>;
  pool: Service<PoolService>;
  idle: IdlePart;
  metrics: Service<MetricsServer> | undefined;
  stateFile: StateFilePart;
  /** Every part, in start order. */
  all: Startable[];
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
  /** Environments (AliECS state machine) replicated here. */
  readonly env: EnvService;
  /** Collectives among this agent's tasks and along the tree of agents. */
  readonly coll: CollService;
  /** Staged data held here (`$SHOAL_STAGE`). */
  readonly stage: StageService;
  /** The pool's queue and, on the scheduler, its scheduling. */
  readonly pool: PoolService;
  /** Resolves when the agent has been idle past its idle timeout (never without one). */
  readonly idle: Promise<void>;
  /** The Prometheus endpoint, when started with `metrics`. */
  readonly metrics: MetricsServer | undefined;
  readonly #parts: AgentParts;
  readonly #log: Logger;
  #stopping: Promise<void> | undefined;

  /** Takes parts that {@linkcode startAll} started. */
  constructor(parts: AgentParts, log: Logger) {
    this.#parts = parts;
    this.#log = log;
    this.node = parts.node;
    this.membership = parts.membership;
    this.runner = parts.runner;
    this.slots = parts.slots;
    this.desired = parts.desired;
    this.kv = parts.talk.get().kv;
    this.taskApi = parts.talk.get().taskApi;
    this.env = parts.env.get();
    this.coll = parts.coll.get();
    this.stage = parts.stage.get();
    this.pool = parts.pool.get();
    this.idle = parts.idle.idle;
    this.metrics = parts.metrics?.get();
  }

  /** This agent's peer ID. */
  get id(): string {
    return this.node.peerId;
  }

  /** Why this agent takes no leases now (undefined: it does). */
  get unhealthy(): string | undefined {
    return this.slots.refusing;
  }

  /** Resolves once the agent reached the mesh. */
  get joined(): Promise<void> {
    return this.#parts.bootstrap.joined;
  }

  /** Writes `agent.json` for tools on this host. */
  writeState(status: "running" | "stopped"): Promise<void> {
    return this.#parts.stateFile.write(status);
  }

  /** Stops every part in reverse start order (tasks first, events last); leaves the mesh. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info("agent stopping", { id: this.id });
      await stopAll(this.#parts.all, {
        onStopError: (part, err) => this.#log.error("a part failed to stop", { part, err }),
      }).catch(() => {/* each failure was logged */});
      this.#log.info("agent stopped", { id: this.id });
    })();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Starts an agent; it keeps trying to reach its bootstrap peers in the background. */
export async function startAgent(init: AgentInit): Promise<Agent> {
  const node = await createAgentNode(init);
  const parts = buildParts(init, node);
  await startAll(parts.all);
  return new Agent(parts, init.log);
}

/** The mesh node, with its malformed-message and stream-error logging. */
async function createAgentNode(init: AgentInit): Promise<MeshNode> {
  const log = init.log;
  const reason = (err: unknown) => err instanceof Error ? err.message : err;
  return await createMeshNode({
    swarmKey: init.swarmKey,
    privateKey: await loadOrCreateIdentity(init.dataDir),
    listen: init.listen ?? ["/ip4/0.0.0.0/tcp/0"],
    onMalformed: (what, err) => {
      // A request that never came within the deadline is a timeout, not a malformed message.
      const name = (err as Error | undefined)?.name;
      if (name === "TimeoutError" || name === "AbortError") {
        log.warn("request timed out before it was read", { on: what, reason: (err as Error).message });
      } else log.warn("dropped malformed message", { on: what, reason: reason(err) });
    },
    onStreamError: (what, err) => log.warn("could not answer on a stream", { on: what, reason: reason(err) }),
  });
}

/** The agent's collaborators that own no lifecycle, the state file, membership and bootstrap. */
function buildCore(init: AgentInit, node: MeshNode) {
  const log = init.log;
  const host = init.host ?? hostname();
  const slots = new SlotTable(init.slots ?? 1);
  const runner = createTaskRunner({
    workDir: init.dataDir,
    log,
    env: { SHOAL_STAGE: stageDir(init.dataDir) },
    ...pickDefined({ graceMs: init.taskGraceMs }, "graceMs"),
  });
  const self = createSelfAnnouncement({ host, slots, ...pickDefined(init, "gpus", "group", "labels") });
  const membership = new Membership({ node, self: self.info, ...membershipTiming(init.probeIntervalMs) });
  const bootstrap = new Bootstrap({
    node,
    addrs: init.bootstrap ?? [],
    onJoined: () => log.info("joined the mesh", { peers: node.connectedPeers().length }),
    onRetry: (errors, next) =>
      log.warn("cannot reach any bootstrap peer yet; retrying", {
        in: `${next}ms`,
        first: `${errors[0]?.addr}: ${errors[0]?.error}`,
      }),
  });
  const startedAt = Date.now();
  const stateFile = createStateFilePart({ dataDir: init.dataDir, node, bootstrap, startedAt, log });
  const desired = new DesiredState(node);
  const events = new EventBatcher(node);
  const claims = new ClaimTable();
  return {
    node,
    log,
    host,
    slots,
    runner,
    self,
    membership,
    bootstrap,
    startedAt,
    stateFile,
    desired,
    events,
    claims,
  };
}
type Core = ReturnType<typeof buildCore>;

/** Every part of the agent, built in dependency order; `all` is that order (the start order). */
function buildParts(init: AgentInit, node: MeshNode): AgentParts {
  const core = buildCore(init, node);
  const { log, host, slots, runner, membership, bootstrap, desired, events, startedAt } = core;
  const talk = createTalkPart({ node, membership, desired, runner, host });
  const metrics = init.metrics === undefined
    ? undefined
    : createMetricsPart({ listen: init.metrics, node, membership, runner, slots, talk, self: core.self });
  const options = pickDefined(
    init,
    "group",
    "labels",
    "gpus",
    "logFile",
    "commandHandler",
    "commandTimeoutMs",
  );
  const agentCommands = createAgentCommandsPart({
    options,
    ...{ node, membership, runner, slots, talk, host, startedAt, log },
  });
  const rooms = buildRooms(init, core, talk);
  const tasks = buildTaskParts(init, core, { talk, stage: rooms.stage, pool: rooms.pool });
  const joinSync = createJoinSyncPart({ node, bootstrap, sources: joinSources(core, talk, rooms), log });
  const all: Startable[] = [
    core.stateFile,
    createNodePart(node),
    createMembershipPart({ membership, log }),
    createPresencePart({ node, host, slots: slots.total, log }),
    createEventsPart(events),
    talk,
    ...(metrics ? [metrics] : []),
    agentCommands,
    rooms.stage,
    rooms.env,
    rooms.pool,
    rooms.coll,
    ...rooms.records,
    ...tasks.all,
    joinSync,
    startable({ name: "bootstrap", start: () => bootstrap.start(), stop: () => bootstrap.stop() }),
  ];
  return { ...core, talk, ...rooms, idle: tasks.idle, metrics, all };
}

/** Staging, environments, the pool, collectives, and the replicated topology records with their syncs. */
function buildRooms(init: AgentInit, core: Core, talk: Service<Talk>) {
  const { node, log, host, membership, desired, runner } = core;
  const stage = createStagePart({
    node,
    workDir: init.dataDir,
    host,
    log,
    ...pickDefined({ cacheMaxBytes: init.stageCacheMaxBytes }, "cacheMaxBytes"),
  });
  const env = createEnvPart({ node, membership, talk, runner, log, dataDir: init.dataDir, desired });
  const sessionId = init.sessionId ?? "";
  const pool = createPoolPart({ node, membership, desired, runner, log, sessionId, env });
  const coll = createCollPart({ node, membership, desired, runner, log, talk });
  const records = [
    createDesiredPart(desired),
    createClaimsPart({ node, desired, claims: core.claims, membership }),
    createDesiredSyncPart({ node, membership, desired, log }),
  ];
  return { stage, env, pool, coll, records };
}

/** The runner, leases and what watches them: health, load, idle, logs, usage, heal sync, failover. */
function buildTaskParts(
  init: AgentInit,
  core: Core,
  deps: { talk: Service<Talk>; stage: Service<StageService>; pool: Service<PoolService> },
) {
  const { node, log, host, slots, runner, membership, desired, events, claims } = core;
  const idleMs = init.idleTimeoutMs ?? (Number(init.labels?.[IDLE_TIMEOUT_LABEL]) || undefined);
  // Not idle while a topology waits in the queue: an agent grown for it would otherwise leave while the
  // rest of the room it waits for is still joining, and be submitted again.
  const busy = () => slots.free < slots.total || deps.pool.get().hasWaiting();
  const idle = createIdlePart({ timeoutMs: idleMs, busy, log });
  const onSlotsChanged = () => {
    idle.touch();
    membership.announce();
  };
  const failover = createFailoverPart({
    ...{ node, membership, desired, claims, events, runner, slots, onSlotsChanged, log, host },
    sessionId: init.sessionId ?? "",
    ...pickDefined(init, "lostAfterMs", "stopOnMinorityAfterMs"),
  });
  const health = createHealthPart({
    ...{ dataDir: init.dataDir, slots, membership, node, host, log },
    ...pickDefined(init, "labels", "health"),
  });
  const leases = createTaskServicePart({
    ...{ node, runner, slots, events, log, host, desired, onSlotsChanged, failover },
    ...{ talk: deps.talk, stage: deps.stage },
    ...pickDefined(init, "orphanGraceMs"),
  });
  const all: Startable[] = [
    createRunnerPart({ runner, log }),
    health,
    createLoadPart({ self: core.self, membership }),
    idle,
    leases,
    createLogServicePart({ node, runner, workDir: init.dataDir }),
    createUsagePart({ node, runner, host }),
    createHealSyncPart({ membership, desired, talk: deps.talk, log }),
    failover,
  ];
  return { idle, all };
}

/** What pulls from the first connected peer once the agent joined. */
function joinSources(
  core: Core,
  talk: Service<Talk>,
  rooms: { env: Service<EnvService>; pool: Service<PoolService> },
): JoinSource[] {
  return [
    {
      message: "synced topologies on join",
      field: "records",
      syncFrom: (p, o) => core.desired.syncFrom(p, o),
    },
    {
      message: "synced key-values on join",
      field: "entries",
      syncFrom: (p, o) => talk.get().replication.syncWith(p, o),
    },
    {
      message: "synced environments on join",
      field: "records",
      syncFrom: (p, o) => rooms.env.get().records.syncFrom(p, o),
    },
    {
      message: "synced the pool's queue on join",
      field: "entries",
      syncFrom: (p, o) => rooms.pool.get().records.syncFrom(p, o),
    },
  ];
}

/** The membership timing for a probe period other than the default. */
function membershipTiming(probeIntervalMs: number | undefined) {
  if (!probeIntervalMs) return {};
  const probeTimeoutMs = Math.min(DEFAULT_TIMING.probeTimeoutMs, probeIntervalMs / 2);
  return { timing: { probeIntervalMs, probeTimeoutMs } };
}

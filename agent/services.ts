/**
 * The agent's services as parts (`mesh/startable.ts`): each factory takes the narrow collaborators the
 * service needs (a {@linkcode Service} of a part listed earlier is read only once that part started) and
 * opens nothing until `start()`.
 *
 * @module
 */
import {
  type Membership,
  type MeshNode,
  type Service,
  service,
  SHOAL_VERSION,
  type Startable,
  startable,
} from "../mesh/mod.ts";
import { ClaimTable, DesiredState, Failover, serveClaims, syncDesiredOnDigest } from "./desired/mod.ts";
import type { EventBatcher } from "./event_batcher.ts";
import type { Logger } from "./log.ts";
import {
  startLogService,
  startTaskUsageService,
  TASK_USAGE_PROTOCOL,
  type TaskRunner,
} from "./runner/mod.ts";
import { LOGS_PROTOCOL } from "./wire/mod.ts";
import { type SlotTable, startTaskService, stopLocalTasks, type TaskService } from "./leases/mod.ts";
import { syncOnReturn } from "./kv/mod.ts";
import { startTalk, type Talk, type TalkInit } from "./talk.ts";
import { type AgentCommands, agentStatus, startAgentCommands } from "./commands/mod.ts";
import type { MetricsServer } from "../metrics/mod.ts";
import { serveAgentMetrics } from "./metrics.ts";
import { currentLoad, type SelfAnnouncement } from "./parts.ts";
import { type EnvService, startEnvService } from "../env/service.ts";
import { collRoute, type CollService, startCollService } from "../coll/mod.ts";
import { type StageService, type StageServiceInit, startStageService } from "../stage/service.ts";
import { createStageFetcher } from "../stage/declared.ts";
import { type PoolService, startPoolService } from "../pool/service.ts";

/** The mesh node, started by `createMeshNode` before any part is built (they need its peer ID). */
export function createNodePart(node: Pick<MeshNode, "stop">): Startable {
  return startable({ name: "mesh node", start() {}, stop: () => node.stop() });
}

/** The membership view, and a log line per membership event. */
export function createMembershipPart(init: { membership: Membership; log: Logger }): Startable {
  let off: (() => void) | undefined;
  return startable({
    name: "membership",
    async start() {
      await init.membership.start();
      off = init.membership.events.on((e) => init.log.info(e.type, { peer: e.id, host: e.host }));
    },
    async stop() {
      off?.();
      await init.membership.stop();
    },
  });
}

/** The coalesced event publisher: listed early, so that it flushes after the tasks' exits were queued. */
export function createEventsPart(events: Pick<EventBatcher, "stop">): Startable {
  return startable({ name: "events", start() {}, stop: () => events.stop() });
}

/** Key-values, custom commands and the task API (`talk.ts`). */
export function createTalkPart(init: TalkInit): Service<Talk> {
  return service("talk", () => startTalk(init), (t) => t.stop());
}

/** The Prometheus endpoint; its address is announced as a member label. */
export function createMetricsPart(
  init: {
    listen: string;
    node: MeshNode;
    membership: Membership;
    runner: TaskRunner;
    slots: SlotTable;
    talk: Service<Talk>;
    self: SelfAnnouncement;
  },
): Service<MetricsServer> {
  const { node, membership, runner, slots } = init;
  return service("metrics", async () => {
    const metrics = await serveAgentMetrics(init.listen, {
      node,
      membership,
      runner,
      slots,
      talk: init.talk.get(),
    });
    init.self.metricsAddress = metrics.address;
    membership.announceNow();
    return metrics;
  }, (m) => m.close());
}

/** What `status` tells besides the live figures, and how the command handler runs. */
export interface AgentCommandsOptions {
  group?: string;
  labels?: Record<string, string>;
  gpus?: number;
  logFile?: string;
  commandHandler?: string;
  commandTimeoutMs?: number;
}

/** Commands to the agent itself (`ping`, `status`, `getlog`, the command handler). */
export function createAgentCommandsPart(
  init: {
    options: AgentCommandsOptions;
    node: MeshNode;
    membership: Membership;
    runner: Pick<TaskRunner, "list">;
    slots: SlotTable;
    talk: Service<Talk>;
    host: string;
    startedAt: number;
    log: Logger;
  },
): Service<AgentCommands> {
  const { options: o, node, membership, host } = init;
  const swim = () => ({
    links: membership.swim?.links().length ?? 0,
    probeTimeoutMs: membership.swim?.probeTimeoutMs ?? 0,
    ...(membership.swim?.counters ?? { sent: 0, received: 0 }),
    connections: membership.connectionCounts,
  });
  const status = () =>
    agentStatus({
      peerId: node.peerId,
      host,
      version: SHOAL_VERSION,
      startedAt: init.startedAt,
      load: currentLoad,
      slots: init.slots,
      tasks: () => init.runner.list(),
      members: () => membership.members(),
      peers: () => node.connectedPeers().length,
      swim,
      ...pickDefined(o, "group", "labels", "gpus", "logFile", "commandHandler"),
    });
  return service("agent commands", () =>
    startAgentCommands({
      commands: init.talk.get().commands,
      log: init.log,
      peerId: node.peerId,
      host,
      status,
      ...(o.logFile ? { logFile: o.logFile } : {}),
      ...(o.commandHandler ? { handler: o.commandHandler } : {}),
      ...(o.commandTimeoutMs !== undefined ? { handlerTimeoutMs: o.commandTimeoutMs } : {}),
    }), (c) => c.close());
}

/** Staged data (`$SHOAL_STAGE`) and its content cache. */
export function createStagePart(init: StageServiceInit): Service<StageService> {
  return service("stage", () => startStageService(init), (s) => s.stop());
}

/** Environments; registers the task API's GO_ERROR with them while running. */
export function createEnvPart(
  init: {
    node: MeshNode;
    membership: Membership;
    talk: Service<Talk>;
    runner: Pick<TaskRunner, "events">;
    log: Logger;
    dataDir: string;
    desired: Pick<DesiredState, "get">;
  },
): Service<EnvService> {
  const { node, membership, log, dataDir, desired } = init;
  return service("environments", async () => {
    const talk = init.talk.get();
    const env = await startEnvService({
      node,
      membership,
      commands: talk.commands,
      taskEvents: init.runner.events,
      log,
      dataDir,
      topology: (id) => desired.get(id),
    });
    talk.taskApi.onGoError = (task, message) => env.taskError(task.topologyId, task.path, message);
    return env;
  }, (env) => {
    init.talk.get().taskApi.onGoError = undefined;
    env.stop();
  });
}

/** What a room over the replicated records and the task events needs (the pool, collectives). */
interface RoomInit {
  node: MeshNode;
  membership: Membership;
  desired: DesiredState;
  runner: Pick<TaskRunner, "events">;
  log: Logger;
}

/** The pool's queue and scheduling. */
export function createPoolPart(
  init: RoomInit & { sessionId: string; env: Service<EnvService> },
): Service<PoolService> {
  const { node, membership, desired, log, sessionId } = init;
  return service("pool", () =>
    startPoolService({
      node,
      membership,
      desired,
      taskEvents: init.runner.events,
      log,
      sessionId,
      envRecords: init.env.get().records,
    }), (p) => p.stop());
}

/** Collectives; registers their route in the task API while running. */
export function createCollPart(init: RoomInit & { talk: Service<Talk> }): Service<CollService> {
  const { node, membership, desired, log } = init;
  return service("collectives", async () => {
    const coll = await startCollService({
      node,
      membership,
      records: desired,
      taskEvents: init.runner.events,
      log,
    });
    init.talk.get().taskApi.routes.set("coll", collRoute(coll));
    return coll;
  }, (coll) => {
    init.talk.get().taskApi.routes.delete("coll");
    coll.stop();
  });
}

/** The replicated topology records (gossip and protocol). */
export function createDesiredPart(desired: DesiredState): Startable {
  return startable({ name: "topology records", start: () => desired.start(), stop: () => desired.stop() });
}

/** Answers failover claims (`claims.ts`). */
export function createClaimsPart(
  init: {
    node: MeshNode;
    desired: DesiredState;
    claims: ClaimTable;
    membership: Pick<Membership, "members">;
  },
): Startable {
  const { node, desired, claims, membership } = init;
  return startable({
    name: "claims",
    start: () => serveClaims({ node, desired, claims, members: () => membership.members() }),
    // The handler goes with the node; claims answered late are harmless (the epoch decides).
    stop() {},
  });
}

/** Pulls records from peers whose digest keeps differing (`desired_sync.ts`). */
export function createDesiredSyncPart(
  init: { node: MeshNode; membership: Membership; desired: DesiredState; log: Logger },
): Startable {
  let off: (() => void) | undefined;
  return startable({
    name: "desired sync",
    start() {
      off ??= syncDesiredOnDigest(init);
    },
    stop: () => off?.(),
  });
}

/** The task runner: stopping it stops every task (SIGTERM, then SIGKILL after the grace period). */
export function createRunnerPart(init: { runner: Pick<TaskRunner, "stopAll">; log: Logger }): Startable {
  return startable({
    name: "task runner",
    start() {},
    async stop() {
      const tasks = await init.runner.stopAll().catch((err) => {
        init.log.error("stopping tasks failed", { err });
        return { stopped: 0, killed: 0 };
      });
      if (tasks.stopped + tasks.killed > 0) init.log.info("tasks stopped", { ...tasks });
    },
  });
}

/** Failover (`failover.ts`); it fences this agent's own tasks through `stopLocalTasks`. */
export interface FailoverPart extends Startable, AsyncDisposable {
  minority: Failover["minority"];
}

/** Builds failover (its constructor does nothing; `start` subscribes). */
export function createFailoverPart(
  init: {
    node: MeshNode;
    membership: Membership;
    desired: DesiredState;
    claims: ClaimTable;
    events: EventBatcher;
    runner: TaskRunner;
    slots: SlotTable;
    onSlotsChanged: () => void;
    log: Logger;
    host: string;
    sessionId: string;
    lostAfterMs?: number;
    stopOnMinorityAfterMs?: number;
  },
): FailoverPart {
  const { node, membership, desired, claims, events, runner, slots, onSlotsChanged, log, host } = init;
  const failover = new Failover({
    node,
    membership,
    desired,
    claims,
    events,
    log,
    host,
    sessionId: init.sessionId,
    stopLocal: (topologyId) => stopLocalTasks({ runner, slots, onSlotsChanged }, topologyId),
    holdsTasks: (topologyId) => slots.leased(topologyId).length > 0,
    missingHere: (r) => (r.placement[node.peerId] ?? []).filter((p) => !slots.wasLeased(r.id, p)),
    ...pickDefined(init, "lostAfterMs", "stopOnMinorityAfterMs"),
  });
  return startable({
    name: "failover",
    minority: () => failover.minority(),
    start() {
      failover.start();
    },
    stop: () => failover.close(),
  });
}

/** Leases, task start and stop, reconciliation and orphan leases (`task_service.ts`). */
export function createTaskServicePart(
  init: {
    node: MeshNode;
    runner: TaskRunner;
    slots: SlotTable;
    events: EventBatcher;
    log: Logger;
    host: string;
    desired: DesiredState;
    talk: Service<Talk>;
    stage: Service<StageService>;
    failover: Pick<FailoverPart, "minority">;
    onSlotsChanged: () => void;
    orphanGraceMs?: number;
  },
): Service<TaskService> {
  const { node, runner, slots, events, log, host, desired, onSlotsChanged } = init;
  return service("leases", () => {
    const stage = init.stage.get();
    const declared = createStageFetcher({ node, stage });
    return startTaskService({
      node,
      runner,
      slots,
      events,
      log,
      host,
      taskApi: init.talk.get().taskApi,
      onSlotsChanged,
      desired,
      minority: () => init.failover.minority(),
      staged: {
        path: (ref, mode) => stage.contentPath(ref.id, mode),
        hold: (owner, refs) => stage.hold(owner, refs),
        release: (owner) => stage.release(owner),
        use: (owner, names) => stage.use(owner, names),
        present: (name, source) => declared.present(name, source),
        fetch: (name, source) => declared.fetch(name, source),
      },
      ...pickDefined(init, "orphanGraceMs"),
    });
  }, (s) => {
    s.close();
    s.orphans?.close();
  });
}

/** Serves task logs to tools. */
export function createLogServicePart(
  init: { node: MeshNode; runner: TaskRunner; workDir: string },
): Startable {
  return startable({
    name: "log service",
    start: () => startLogService(init),
    // Stopping: a node already stopped has no handlers left to remove.
    stop: () => init.node.libp2p.unhandle(LOGS_PROTOCOL).catch(() => {}),
  });
}

/** Answers what the running tasks use (`shoal top`). */
export function createUsagePart(init: { node: MeshNode; runner: TaskRunner; host: string }): Startable {
  return startable({
    name: "task usage",
    start: () => startTaskUsageService(init),
    // Stopping: a node already stopped has no handlers left to remove.
    stop: () => init.node.libp2p.unhandle(TASK_USAGE_PROTOCOL).catch(() => {}),
  });
}

/** Catch-up with peers back from the dead (`heal_sync.ts`). */
export function createHealSyncPart(
  init: { membership: Membership; desired: DesiredState; talk: Service<Talk>; log: Logger },
): Startable {
  let off: (() => void) | undefined;
  return startable({
    name: "heal sync",
    start() {
      const { membership, desired, log } = init;
      off ??= syncOnReturn({
        membership,
        liveCount: () => membership.swim?.table.live.size ?? 0,
        desired,
        replication: init.talk.get().replication,
        log,
      });
    },
    stop: () => off?.(),
  });
}

/** The named keys of `o` whose values are defined (for `exactOptionalPropertyTypes`). */
export function pickDefined<T extends object, K extends keyof T>(o: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

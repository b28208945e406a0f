/**
 * The agent's side of deployment: grants slot leases and starts the tasks on them, stops tasks, lists
 * them, frees slots as tasks end for good, and gossips their state changes in batches.
 *
 * @module
 */
import { handleRequests, type MeshNode, request } from "../../mesh/mod.ts";
import type { EventBatcher } from "../event_batcher.ts";
import type { DesiredState } from "../desired/mod.ts";
import type { Logger } from "../log.ts";
import { type StagedRef, unpackBlobs } from "../wire/mod.ts";
import { OrphanLeases } from "./orphan_leases.ts";
import {
  LEASE_COMMIT_PROTOCOL,
  LEASE_PROTOCOL,
  LeaseCommitRequestSchema,
  type LeaseRequest,
  LeaseRequestSchema,
  type LeaseResponse,
  RECONCILE_PROTOCOL,
  ReconcileRequestSchema,
  ReconcileResponseSchema,
  STOP_PROTOCOL,
  StopRequestSchema,
  TASKS_PROTOCOL,
  TasksRequestSchema,
  type TasksResponse,
} from "../wire/mod.ts";
import { startReconciler } from "../desired/mod.ts";
import type { StopResult, TaskRunner } from "../runner/mod.ts";
import type { SlotTable } from "./slots.ts";
import { declaredNames } from "../../commander/mod.ts";
import type { TaskSpec } from "../wire/mod.ts";
import type { StageSource } from "../../stage/types.ts";

/** A task of a lease request, files unpacked, slot not yet given. */
type Leased = ReturnType<typeof unpackBlobs<LeaseRequest["tasks"][number]>>[number];

/** What the task service needs. */
export interface TaskServiceInit {
  node: MeshNode;
  runner: TaskRunner;
  slots: SlotTable;
  events: EventBatcher;
  log: Logger;
  host: string;
  /** Called when free slots changed, to announce them at once. */
  onSlotsChanged: () => void;
  /** With it, tasks of a commander that died before recording its topology are stopped (all or nothing). */
  desired?: DesiredState;
  /** How long such a commander may be gone first (default 15 s). */
  orphanGraceMs?: number;
  /** How long a held lease waits for its commit before its slots are freed (default 30 s). */
  holdMs?: number;
  /** Topologies this agent's side may not re-place (answered with the tasks, for `shoal info`). */
  minority?: () => { topologyId: string; sees: number; of: number; need: number; since: number }[];
  /** Staged contents that leases refer to (`lease_staging.ts`), kept while tasks use them. */
  staged?: {
    path(ref: StagedRef, mode: number): string | undefined;
    hold(owner: string, refs: { id: string; mode: number }[]): void;
    release(owner: string): void;
    /**
     * Marks staged names a task refers to (`$SHOAL_STAGE/<name>` in its command or env) as used now, and
     * keeps them from eviction until `release(owner)`.
     */
    use(owner: string, names: string[]): void;
    /** The local path of a declared staged name when it is here in the version `source` names. */
    present?(name: string, source?: StageSource): string | undefined;
    /** Pulls a declared staged name from the holders `source` names; resolves to its local path. */
    fetch?(name: string, source?: StageSource): Promise<string>;
  };
  /** Gives each task its API socket and token. */
  taskApi?: {
    register(spec: TaskSpec): Record<string, string>;
    unregister(topologyId: string, path: string): void;
  };
}

/** What {@linkcode startTaskService} hands back. */
export interface TaskService {
  /** The watch on unconfirmed leases (with `desired`). */
  orphans: OrphanLeases | undefined;
  /** Stops tasks here and frees their slots (all of the topology when `paths` is absent). */
  stopLocal(topologyId: string, paths?: string[], graceMs?: number): Promise<StopResult>;
  /** Stops reconciling. */
  close(): void;
}

/**
 * Stops tasks here and frees their slots (all of the topology when `paths` is absent). Failover's
 * self-fencing uses it too, without the task service.
 */
export async function stopLocalTasks(
  parts: Pick<TaskServiceInit, "runner" | "slots" | "onSlotsChanged">,
  topologyId: string,
  options: { paths?: string[]; graceMs?: number } = {},
): Promise<StopResult> {
  const { runner, slots } = parts;
  const filter = { topologyId, ...(options.paths ? { paths: options.paths } : {}) };
  const result = await runner.stop(filter, options.graceMs !== undefined ? { graceMs: options.graceMs } : {});
  runner.forget(filter);
  if (slots.release(topologyId, options.paths) > 0) parts.onSlotsChanged();
  return result;
}

/** Serves the lease, stop and tasks protocols on the agent, and reconciles its tasks with the records. */
export async function startTaskService(init: TaskServiceInit): Promise<TaskService> {
  const { node, runner, slots, log } = init;
  const me = node.peerId;

  /** Topologies being stopped here as a whole, and by how many stops: their exits are for tools only. */
  const wholeStops = new Map<string, number>();
  const stopLocal = async (topologyId: string, paths?: string[], graceMs?: number): Promise<StopResult> => {
    if (paths) {
      return await stopLocalTasks(init, topologyId, { paths, ...(graceMs !== undefined ? { graceMs } : {}) });
    }
    wholeStops.set(topologyId, (wholeStops.get(topologyId) ?? 0) + 1);
    try {
      return await stopLocalTasks(init, topologyId, graceMs !== undefined ? { graceMs } : {});
    } finally {
      const n = wholeStops.get(topologyId)! - 1;
      if (n > 0) wholeStops.set(topologyId, n);
      else wholeStops.delete(topologyId);
    }
  };
  const orphans = init.desired
    ? new OrphanLeases({
      node,
      desired: init.desired,
      log,
      held: (topologyId, path) => slots.leaseEpoch(topologyId, path) !== undefined,
      ...(init.orphanGraceMs !== undefined ? { graceMs: init.orphanGraceMs } : {}),
      stop: async (topologyId, paths) => {
        await stopLocal(topologyId, paths);
      },
      report: (e) => init.events.add({ type: "tasks:abandoned", at: Date.now(), agent: me, ...e }),
    })
    : undefined;

  const reconciler = init.desired
    ? startReconciler({
      me,
      desired: init.desired,
      slots,
      events: init.events,
      log,
      stop: (topologyId, paths) => stopLocal(topologyId, paths),
      instance: (topologyId, path) => {
        const t = runner.get(topologyId, path);
        const epoch = slots.leaseEpoch(topologyId, path);
        if (!t || t.state !== "running" || epoch === undefined) return undefined;
        return {
          agent: me,
          epoch,
          startedAt: t.startedAt ?? Date.now(),
          score: slots.free / Math.max(1, slots.total),
        };
      },
      ask: (agent, req, signal) =>
        request(node, agent, RECONCILE_PROTOCOL, req, {
          schema: ReconcileResponseSchema,
          signal,
          timeoutMs: 5_000,
        }),
    })
    : undefined;
  if (reconciler) {
    await handleRequests(node, RECONCILE_PROTOCOL, {
      schema: ReconcileRequestSchema,
      handler: (req) => reconciler.answer(req),
    });
  }
  const unwatch = () => reconciler?.close();

  runner.events.on((e) => {
    init.events.add({ ...e, agent: me, host: init.host }, { wholeStop: wholeStops.has(e.topologyId) });
    const final = (e.type === "task:exited" && !e.willRestart) || e.type === "task:failed";
    if (final) init.taskApi?.unregister(e.topologyId, e.path);
    if (final) init.staged?.release(`${e.topologyId}\0${e.path}`);
    if (final && slots.release(e.topologyId, [e.path]) > 0) init.onSlotsChanged();
  });

  /** Leases granted with `hold`, waiting for their commit. */
  const holds = new Map<
    string,
    { req: LeaseRequest; tasks: Leased[]; slotIds: Map<string, string>; timer: ReturnType<typeof setTimeout> }
  >();
  const holdMs = init.holdMs ?? 30_000;

  /** Starts the tasks of a granted lease. */
  const startLeased = async (req: LeaseRequest, tasks: Leased[], slotIds: Map<string, string>) => {
    orphans?.leased(req.topologyId, req.epoch, req.commander, tasks.map((t) => t.path));
    log.info("lease granted", {
      topology: req.topologyId,
      tasks: tasks.length,
      commander: req.commander,
    });
    for (const t of req.tasks) {
      const refs = (t.files ?? []).flatMap((f) =>
        f.staged ? [{ id: f.staged.id, mode: f.mode ?? 0o644 }] : []
      );
      if (refs.length) init.staged?.hold(`${req.topologyId}\0${t.path}`, refs);
    }
    const sources = new Map((req.stage ?? []).map((s) => [s.name, s]));
    /** Staged names this lease's tasks declare that are not here yet: pulled once each. */
    const pulls = new Map<string, Promise<string>>();
    const { staged } = init;
    return await Promise.all(tasks.map(async (t) => {
      const spec = { ...t, topologyId: req.topologyId, slotId: slotIds.get(t.path)! } as TaskSpec;
      const owner = `${req.topologyId}\0${t.path}`;
      const named = declaredNames(t);
      const paths = new Map<string, string>();
      const waits: Promise<void>[] = [];
      for (const name of staged?.fetch ? named : []) {
        const here = staged!.present?.(name, sources.get(name));
        if (here !== undefined) {
          paths.set(name, here);
          continue;
        }
        let pulled = pulls.get(name);
        if (!pulled) {
          log.info("pulling a declared staged name before starting its tasks", {
            topology: req.topologyId,
            name,
            holders: sources.get(name)?.holders.length ?? 0,
          });
          pulled = staged!.fetch!(name, sources.get(name));
          pulls.set(name, pulled);
        }
        waits.push(pulled.then((path) => void paths.set(name, path)));
      }
      // Its staged assets become links to the names, which are kept from eviction while it runs.
      const link = () => {
        if (spec.files?.some((f) => f.stage !== undefined)) {
          spec.files = spec.files.map((f) =>
            f.stage !== undefined && paths.has(f.stage) ? { ...f, link: paths.get(f.stage)! } : f
          );
        }
        if (named.length) staged?.use(owner, named);
      };
      try {
        if (init.taskApi) spec.extraEnv = { ...spec.extraEnv, ...init.taskApi.register(spec) };
        if (waits.length === 0) {
          link();
          return await runner.start(spec);
        }
        // The lease is answered at once (the task is `starting`); it starts when its names are here.
        const started = runner.start(spec, { before: Promise.all(waits).then(link) });
        started.catch((err) => {
          log.warn("task could not start", { topology: req.topologyId, path: t.path, err: String(err) });
          if (slots.release(req.topologyId, [t.path]) > 0) init.onSlotsChanged();
        });
        return runner.get(req.topologyId, t.path) ?? await started;
      } catch (err) {
        slots.release(req.topologyId, [t.path]);
        return {
          topologyId: req.topologyId,
          path: t.path,
          id: t.id,
          state: "failed" as const,
          restarts: 0,
          reason: err instanceof Error ? err.message : String(err),
        };
      }
    }));
  };

  await handleRequests(node, LEASE_PROTOCOL, {
    schema: LeaseRequestSchema,
    maxBytes: 64 * 1024 * 1024,
    handler: async (req): Promise<LeaseResponse> => {
      const tasks = unpackBlobs(req.tasks, req.blobs, init.staged?.path);
      const lease = slots.grant(req.topologyId, req.epoch, tasks.map((t) => t.path));
      if (!lease.ok) {
        const reason = lease.reason === "full"
          ? `Only ${lease.free} free slot(s) for ${lease.wanted} task(s)`
          : lease.reason === "unhealthy"
          ? `This agent takes no leases now: ${lease.why}`
          : lease.reason === "stale-epoch"
          ? `Epoch ${lease.epoch} is older than ${lease.current} for topology "${req.topologyId}"`
          : `Task "${lease.path}" already holds a slot here`;
        log.info("lease refused", {
          topology: req.topologyId,
          tasks: tasks.length,
          commander: req.commander,
          epoch: req.epoch,
          reason,
        });
        return { granted: false, agent: me, reason, free: slots.free };
      }
      init.onSlotsChanged();
      if (req.hold) {
        const id = crypto.randomUUID();
        const timer = setTimeout(() => {
          if (!holds.delete(id)) return;
          log.warn("held lease lapsed uncommitted; slots freed", {
            topology: req.topologyId,
            tasks: tasks.length,
          });
          if (slots.release(req.topologyId, tasks.map((t) => t.path)) > 0) init.onSlotsChanged();
        }, holdMs);
        (timer as { unref?: () => void }).unref?.();
        holds.set(id, { req, tasks, slotIds: lease.slots, timer });
        log.info("lease held", { topology: req.topologyId, tasks: tasks.length, commander: req.commander });
        return { granted: true, agent: me, tasks: [], hold: id };
      }
      return { granted: true, agent: me, tasks: await startLeased(req, tasks, lease.slots) };
    },
  });

  await handleRequests(node, LEASE_COMMIT_PROTOCOL, {
    schema: LeaseCommitRequestSchema,
    handler: async (req) => {
      const h = holds.get(req.hold);
      if (!h) {
        return { ok: false, agent: me, tasks: [], reason: `No held lease "${req.hold}" here (it lapsed?)` };
      }
      holds.delete(req.hold);
      clearTimeout(h.timer);
      if (!req.commit) {
        if (slots.release(h.req.topologyId, h.tasks.map((t) => t.path)) > 0) init.onSlotsChanged();
        return { ok: true, agent: me, tasks: [] };
      }
      return { ok: true, agent: me, tasks: await startLeased(h.req, h.tasks, h.slotIds) };
    },
  });

  await handleRequests(node, STOP_PROTOCOL, {
    schema: StopRequestSchema,
    maxBytes: 16 * 1024 * 1024,
    handler: async (req) => {
      const result = await stopLocal(req.topologyId, req.paths, req.graceMs);
      log.info("tasks stopped", { topology: req.topologyId, stopped: result.stopped, killed: result.killed });
      return { agent: me, ...result };
    },
  });

  await handleRequests(node, TASKS_PROTOCOL, {
    schema: TasksRequestSchema,
    maxResponseBytes: 64 * 1024 * 1024,
    handler: (req): TasksResponse => ({
      agent: me,
      host: init.host,
      slots: { total: slots.total, free: slots.free },
      tasks: runner.list(req.topologyId ? { topologyId: req.topologyId } : {}),
      ...(init.minority ? { minority: init.minority() } : {}),
    }),
  });
  return { orphans, stopLocal, close: unwatch };
}

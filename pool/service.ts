/**
 * The agent side of the pool: every agent replicates the queue and serves {@linkcode POOL_PROTOCOL}; the
 * scheduler — the alive agent with the lowest peer ID, so all agree without talking, as for environments
 * and failover — starts queued topologies as slots free up (`scheduler.ts` decides which), one at a time,
 * through the ordinary all-or-nothing activation, and writes a pool log line per topology every 10 s.
 * Every agent counts the tasks that ended (from the events it receives anyway), so a new scheduler knows
 * how far a topology got; a topology whose tasks have all ended is done and its slots are the pool's again.
 *
 * @module
 */
import { EVENTS_TOPIC, handleRequests, type Member, type Membership, type MeshNode } from "../mesh/mod.ts";
import { activateTopology, type CommanderInit, errorText } from "../commander/mod.ts";
import type { DesiredState } from "../agent/desired/mod.ts";
import type { Logger } from "../agent/log.ts";
import { EventMessageSchema, type RunnerEvent, type ShoalEvent } from "../agent/wire/mod.ts";
import { type Clock, REAL_CLOCK } from "./clock.ts";
import { agentSlots, Expansions, fitsOn } from "./fit.ts";
import {
  POOL_PROTOCOL,
  type PoolRequest,
  PoolRequestSchema,
  type PoolResponse,
  type Progress,
  type QueueEntry,
} from "./protocols.ts";
import { PoolRecords } from "./records.ts";
import { decide, type Decision } from "./scheduler.ts";

/** What {@linkcode startPoolService} needs. */
export interface PoolServiceInit {
  node: MeshNode;
  membership: Membership;
  desired: DesiredState;
  /** This agent's task events (its own exits never come back through gossip). */
  taskEvents: { on(fn: (e: RunnerEvent) => void): () => void };
  log: Logger;
  sessionId: string;
  /** How long a dead scheduler's half-started topology waits before it is queued again (default 20 s). */
  orphanGraceMs?: number;
  /** Scheduler period (default 250 ms); it also acts at once on every change. */
  tickMs?: number;
  /** Pool log period (default 10 s). */
  logEveryMs?: number;
  clock?: Clock;
  /** The environments' records: an environment the pool started is done once destroyed or DONE. */
  envRecords?: {
    changes: {
      on(fn: (c: { after: { id: string; state: string; destroyed: boolean } }) => void): () => void;
    };
  };
}

/** The running service. */
export interface PoolService {
  records: PoolRecords;
  /** Whether this agent schedules now. */
  isScheduler(): boolean;
  /** Progress of started topologies as counted here. */
  progress(): Progress[];
  /** Whether a topology waits in the queue or is being started: the pool's work is not over. */
  hasWaiting(): boolean;
  stop(): void;
}

/** The alive agent with the lowest peer ID. */
export function schedulerOf(members: readonly { id: string; state: string }[]): string | undefined {
  return members.filter((m) => m.state === "alive").map((m) => m.id).sort()[0];
}

/** Starts the pool service of an agent. */
export async function startPoolService(init: PoolServiceInit): Promise<PoolService> {
  const { node, membership, desired, log } = init;
  const clock = init.clock ?? REAL_CLOCK;
  const me = node.peerId;
  const records = new PoolRecords(node);
  records.start(membership);
  const expansions = new Expansions();
  /** Topology ID → paths whose tasks ended for good. */
  const ended = new Map<string, Set<string>>();
  let starting = false;
  /**
   * Slots this scheduler just leased, per agent, with that agent's free count in the view when it did: the
   * view catches up a gossip round later, and until it changes the leased slots are taken off it.
   */
  const reserved = new Map<string, { n: number; viewFree: number }>();
  const everFitsCache = new Map<string, { sig: string; fits: boolean }>();
  let last: Decision | undefined;
  // Worked out again after membership events, once for all the events of a batch (a push-pull brings N
  // joins at once): a tick of a non-scheduler costs O(1), a batch O(N).
  let scheduler: string | undefined;
  let schedulerStale = true;
  const isScheduler = () => {
    if (schedulerStale) scheduler = schedulerOf(membership.members());
    schedulerStale = false;
    return scheduler === me;
  };
  /** Entries queued or starting: the tick does nothing while there are none. */
  const pending = new Set<string>();

  const bump = (e: QueueEntry, change: Partial<QueueEntry>): QueueEntry => {
    const next = {
      ...e,
      ...change,
      version: e.version + 1,
      updatedAt: Math.max(clock.now(), e.updatedAt + 1),
    };
    for (const k of Object.keys(change) as (keyof QueueEntry)[]) if (change[k] === undefined) delete next[k];
    return next;
  };

  const progressOf = (e: QueueEntry): Progress => {
    const placement = desired.get(e.id)?.placement ?? {};
    const done = ended.get(e.id) ?? new Set<string>();
    let slots = 0;
    let agents = 0;
    for (const paths of Object.values(placement)) {
      const held = paths.filter((p) => !done.has(p)).length;
      slots += held;
      if (held > 0) agents++;
    }
    return { id: e.id, agents, slots, done: Math.min(done.size, e.tasks), all: e.tasks };
  };

  /** A queue entry's end that could not be written (the node is stopping): said, not dropped. */
  const logLost = (e: QueueEntry, err: unknown) =>
    log.warn("could not record a pool topology's end", {
      topology: e.id,
      reason: (err as Error).message,
    });
  const finish = async (e: QueueEntry, why: string) => {
    await records.put(bump(e, { state: "done", endedAt: clock.now() }));
    const rec = desired.get(e.id);
    if (rec?.state === "active" && !e.env) {
      await desired.put({
        ...rec,
        state: "stopped",
        version: rec.version + 1,
        placement: {},
        updatedAt: Date.now(),
      });
    }
    const { id: _, ...p } = progressOf(e);
    log.info("pool topology done", { topology: e.id, why, ...p });
  };

  const onEnded = (topologyId: string, path: string) => {
    const e = records.get(topologyId);
    if (!e || (e.state !== "starting" && e.state !== "running")) return;
    let set = ended.get(topologyId);
    if (!set) ended.set(topologyId, set = new Set());
    set.add(path);
    // An environment's tasks come and go with its runs: it is done when destroyed, not when they end.
    if (e.state === "running" && !e.env && set.size >= e.tasks && isScheduler()) {
      void finish(e, "every task ended").catch((err) => logLost(e, err));
    }
  };
  const onEvent = (e: RunnerEvent | ShoalEvent) => {
    const final = (e.type === "task:exited" && !e.willRestart) || e.type === "task:failed";
    if (final) {
      onEnded(e.topologyId, e.path);
      schedule(); // slots freed (the view may show it only a moment later: the tick catches that)
    }
  };

  const start = async (e: QueueEntry) => {
    starting = true;
    ended.delete(e.id);
    const claimed = bump(e, { state: "starting", startedBy: me, startedAt: clock.now(), reason: undefined });
    try {
      await records.put(claimed);
      log.info("pool starting topology", { topology: e.id, priority: e.priority, tasks: e.tasks });
      const seen = new Map(membership.members().map((m) => [m.id, m.slots.free]));
      const commander = { node, via: me, sessionId: init.sessionId };
      const src = { id: e.id, file: e.file, source: e.source, vars: e.vars };
      const r = e.env ? await deployEnvironment(commander, e, src) : await activateTopology(
        commander,
        src,
        { hold: true }, // no task of a topology that does not fit runs, even briefly
      );
      for (const [agent, n] of Map.groupBy(r.tasks, (t) => t.agent)) {
        const had = reserved.get(agent);
        const viewFree = seen.get(agent);
        if (viewFree !== undefined) {
          reserved.set(agent, { n: (had?.n ?? 0) + n.length, viewFree: had?.viewFree ?? viewFree });
        }
      }
      const now = records.get(e.id) ?? claimed;
      await records.put(bump(now, { state: "running", failedAt: undefined }));
      log.info("pool started topology", {
        topology: e.id,
        tasks: r.started,
        agents: r.agents,
        ms: r.elapsedMs,
      });
      const running = records.get(e.id)!;
      if (!running.env && (ended.get(e.id)?.size ?? 0) >= running.tasks) {
        await finish(running, "every task ended");
      }
    } catch (err) {
      const reason = errorText(err);
      const now = records.get(e.id) ?? claimed;
      const already = /is already active|^Environment "[^"]*" exists/.test(reason);
      log.warn("pool could not start topology", { topology: e.id, reason });
      await records.put(
        already
          ? bump(now, { state: "cancelled", reason, endedAt: clock.now() })
          : bump(now, { state: "queued", reason, failedAt: clock.now(), startedBy: undefined }),
        // A put fails only while the node stops; the failure itself was logged just above.
      ).catch(() => {});
    } finally {
      starting = false;
      schedule();
    }
  };

  const tick = () => {
    if (pending.size === 0) return void (last = undefined);
    if (starting || !isScheduler()) return;
    const entries = records.entries();
    const members = membership.members();
    const alive = new Set(members.filter((m) => m.state !== "dead" && m.state !== "left").map((m) => m.id));
    for (const m of members) {
      const r = reserved.get(m.id);
      if (r && m.slots.free !== r.viewFree) reserved.delete(m.id);
    }
    const free = agentSlots(members).map((a) => {
      const r = reserved.get(a.id);
      return r ? { ...a, freeSlots: Math.max(0, a.freeSlots - r.n) } : a;
    });
    const all = agentSlots(members, true);
    const poolSig = all.map((a) => `${a.id}:${a.freeSlots}`).join(",");
    const safely = (fn: (e: QueueEntry) => boolean) => (e: QueueEntry) => {
      try {
        return fn(e);
      } catch {
        return false; // a source that no longer expands: it waits, and `shoal pool` shows it
      }
    };
    last = decide(entries, {
      now: clock.now(),
      fits: safely((e) => fitsOn(expansions.get(e), free)),
      everFits: safely((e) => {
        // Placement on the whole pool changes only with the pool: once per entry and pool, not per tick.
        const key = `${e.id}@${e.version}`;
        const hit = everFitsCache.get(key);
        if (hit?.sig === poolSig) return hit.fits;
        const fits = fitsOn(expansions.get(e), all);
        everFitsCache.set(key, { sig: poolSig, fits });
        return fits;
      }),
      alive: (p) => alive.has(p),
      orphanGraceMs: init.orphanGraceMs ?? 20_000,
      retryAfterMs: 2_000,
    });
    for (const e of last.requeue) {
      log.warn("pool queues again a topology its dead scheduler was starting", {
        topology: e.id,
        by: e.startedBy,
      });
      void records.put(
        bump(e, { state: "queued", startedBy: undefined, reason: "its scheduler died while starting it" }),
      );
    }
    if (last.start) void start(last.start);
  };
  // Changes act at once (coalesced into one microtask); the timer catches freed slots, which membership
  // reports without an event. It runs only while something waits: an idle agent's event loop stays asleep.
  let ticker: unknown;
  const tickWhilePending = () => {
    if (pending.size > 0) ticker ??= clock.setInterval(tick, init.tickMs ?? 250);
    else if (ticker !== undefined) {
      clock.clearInterval(ticker);
      ticker = undefined;
    }
  };
  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      tick();
    });
  };

  const poolLog = () => {
    if (!isScheduler()) return;
    for (const e of records.entries()) {
      if (e.state === "running" || e.state === "starting") {
        const { id: _, ...p } = progressOf(e);
        log.info("pool", { topology: e.id, ...p });
      } else if (e.state === "queued") {
        const o = last?.order.find((x) => x.entry.id === e.id);
        log.info("pool", {
          topology: e.id,
          agents: 0,
          slots: 0,
          done: 0,
          all: e.tasks,
          queued: o?.position ?? "?",
          priority: e.priority,
          waiting: o?.waiting ?? "",
        });
      }
    }
  };

  const handle = async (req: PoolRequest): Promise<PoolResponse> => {
    const base = { from: me, scheduler: isScheduler() };
    if (req.op === "list") {
      const mine = base.scheduler
        ? {
          progress: records.entries().filter((e) => e.state === "running" || e.state === "starting").map(
            progressOf,
          ),
          order: (last?.order ?? []).map((o) => ({
            id: o.entry.id,
            position: o.position,
            waiting: o.waiting,
          })),
        }
        : {};
      return { ok: true, ...base, entries: records.entries(), ...mine };
    }
    if (req.op === "cancel") {
      const cur = records.get(req.id);
      if (!cur || cur.state !== "queued") {
        return {
          ok: false,
          ...base,
          reason: cur
            ? `Topology "${req.id}" is ${cur.state}, not queued; stop it with \`shoal topology stop --id ${req.id}\``
            : `Nothing named "${req.id}" is queued (see \`shoal pool\`)`,
          ...(cur ? { entry: cur } : {}),
        };
      }
      const next = bump(cur, { state: "cancelled", endedAt: clock.now(), reason: `cancelled by ${req.by}` });
      await records.put(next);
      return { ok: true, ...base, entry: next };
    }
    const cur = records.get(req.entry.id);
    if (cur && (cur.state === "queued" || cur.state === "starting" || cur.state === "running")) {
      return {
        ok: false,
        ...base,
        reason: `Topology "${cur.id}" is ${cur.state} in the pool already`,
        entry: cur,
      };
    }
    if (desired.get(req.entry.id)?.state === "active") {
      return {
        ok: false,
        ...base,
        reason: `Topology "${req.entry.id}" is already active; stop it, or queue it under another --id`,
      };
    }
    const entry: QueueEntry = {
      ...req.entry,
      state: "queued",
      version: (cur?.version ?? 0) + 1,
      queuedAt: clock.now(),
      updatedAt: Math.max(clock.now(), (cur?.updatedAt ?? 0) + 1),
    };
    for (const k of ["startedBy", "startedAt", "endedAt", "failedAt", "reason"] as const) delete entry[k];
    await records.put(entry);
    return { ok: true, ...base, entry };
  };

  const offs = [
    records.changes.on(({ after }) => {
      if (after.state === "queued" || after.state === "starting") pending.add(after.id);
      else {
        pending.delete(after.id);
        for (const k of everFitsCache.keys()) if (k.startsWith(`${after.id}@`)) everFitsCache.delete(k);
      }
      tickWhilePending();
      schedule();
    }),
    membership.events.on(() => {
      schedulerStale = true;
      schedule();
    }),
    desired.changes.on((r) => {
      const e = records.get(r.id);
      if (r.state === "stopped" && e?.state === "running" && isScheduler()) {
        void finish(e, "stopped").catch((err) => logLost(e, err));
      }
    }),
    init.taskEvents.on(onEvent),
    init.envRecords?.changes.on(({ after }) => {
      const e = records.get(after.id);
      if (e?.env && e.state === "running" && (after.destroyed || after.state === "DONE") && isScheduler()) {
        void finish(e, after.destroyed ? "environment destroyed" : "environment DONE").catch((err) =>
          logLost(e, err)
        );
      }
    }) ?? (() => {}),
    node.subscribe(EVENTS_TOPIC, EventMessageSchema, (events) => events.forEach(onEvent)),
  ];
  await handleRequests(node, POOL_PROTOCOL, {
    schema: PoolRequestSchema,
    maxBytes: 16 * 1024 * 1024,
    maxResponseBytes: 64 * 1024 * 1024,
    handler: (req) => handle(req as PoolRequest),
  });

  const timers = [clock.setInterval(poolLog, init.logEveryMs ?? 10_000)];
  return {
    records,
    isScheduler,
    progress: () => records.entries().filter((e) => e.state === "running").map(progressOf),
    hasWaiting: () => pending.size > 0,
    stop() {
      for (const t of timers) clock.clearInterval(t);
      if (ticker !== undefined) clock.clearInterval(ticker);
      for (const off of offs) off();
      records.stop();
    },
  };
}

/** Members as the pool reads them (re-exported for the CLI). */
export type { Member };

/**
 * DEPLOYs a queued environment. The controller is imported when first needed: it imports the agent area,
 * which starts this service (a cycle at load time, none once everything is loaded).
 */
async function deployEnvironment(
  commander: CommanderInit,
  e: QueueEntry,
  src: { id: string; file: string; source: string; vars: Record<string, string> },
): Promise<{ started: number; agents: number; elapsedMs: number; tasks: { agent: string }[] }> {
  const { createEnvironment } = await import("../env/controller.ts");
  const began = performance.now();
  const r = await createEnvironment({ ...commander, by: e.env!.by }, {
    id: e.id,
    topologyFile: e.file,
    vars: e.vars,
    control: e.env!.control as Parameters<typeof createEnvironment>[1]["control"],
    topology: src,
    hold: true,
  });
  const started =
    Object.values(r.record.tasks).filter((t) => t.mode === "direct" || t.mode === "none").length;
  // No reservation from here: the next decision waits for the view, at worst one refused (held) attempt.
  return { started, agents: 0, elapsedMs: Math.round(performance.now() - began), tasks: [] };
}

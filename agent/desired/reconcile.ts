/**
 * Reconcile on heal: after a partition (or a false death under load) a task path can run twice — the
 * original on an agent that a majority lost sight of, and the replacement that majority started under a
 * newer epoch. Each agent compares its own instances with every topology record it learns. An instance
 * leased under an older epoch than the record's, whose path the record places on another agent, is a
 * duplicate; one of the two is stopped and reported (`task:duplicate-stopped`, and in the agent log), by the
 * topology's rule (Nomad's names; `shoal topology activate --reconcile`):
 * - `keep_replacement` (default): the record is the truth, so the duplicate stops itself with no further
 *   agreement.
 * - `keep_original`, `longest_running`, `best_score`: the duplicate's agent asks the agent the record places
 *   the path on (`RECONCILE_PROTOCOL`), which alone decides between the two instances
 *   ({@linkcode keepOf}). If the asker's instance stays, the answerer stops its own and moves the path to
 *   the asker in the record; otherwise the asker stops its own. Stopping is all either side ever does, so
 *   two instances become one, never none: an unanswered question is asked again, and after a minute the
 *   asker falls back to `keep_replacement`.
 *
 * An instance the record places nowhere (the majority found no slot for it and declared it lost) is
 * the only one left, so it keeps running and this agent writes itself into the record (adopts it). A
 * stopped record stops every instance leased under its epoch or an older one (`topology stop` while this
 * agent was cut off). Instances leased under the record's own epoch and not yet in it belong to a
 * commander still at work; `orphan_leases.ts` handles those.
 *
 * @module
 */
import type * as v from "valibot";
import type { DesiredState } from "./desired_state.ts";
import type { EventBatcher } from "../event_batcher.ts";
import type { Logger } from "../log.ts";
import type {
  Instance,
  ReconcileRequestSchema,
  ReconcileResponseSchema,
  TopologyRecord,
} from "../wire/mod.ts";
import type { SlotTable } from "../leases/mod.ts";

/** How a duplicated path is reduced to one instance. */
export type ReconcileRule = NonNullable<TopologyRecord["reconcile"]>;
/** Every rule, the default first. */
export const RECONCILE_RULES: readonly ReconcileRule[] = [
  "keep_replacement",
  "keep_original",
  "longest_running",
  "best_score",
];

/**
 * Which of two instances of one path stays under `rule` (deterministic: ties fall to the next criterion,
 * then to the lower agent ID).
 * - `keep_replacement`: the one leased under the later epoch (the record's).
 * - `keep_original`: the one leased under the earlier epoch.
 * - `longest_running`: the one whose current run started first (a restart starts a new run).
 * - `best_score`: the one on the agent with the larger free share of its slots (spread), then the longest
 *   running.
 */
export function keepOf(rule: ReconcileRule, asker: Instance, answerer: Instance): "asker" | "answerer" {
  const by = (a: number, b: number) => (a === b ? 0 : a < b ? -1 : 1); // -1: the asker's value is lower
  const order: number[] = rule === "keep_replacement"
    ? [-by(asker.epoch, answerer.epoch)]
    : rule === "keep_original"
    ? [by(asker.epoch, answerer.epoch), by(asker.startedAt, answerer.startedAt)]
    : rule === "longest_running"
    ? [by(asker.startedAt, answerer.startedAt), by(asker.epoch, answerer.epoch)]
    : [
      -by(asker.score, answerer.score),
      by(asker.startedAt, answerer.startedAt),
      by(asker.epoch, answerer.epoch),
    ];
  for (const o of order) if (o !== 0) return o < 0 ? "asker" : "answerer";
  return asker.agent < answerer.agent ? "asker" : "answerer";
}

/** What the reconciler needs. */
export interface ReconcileInit {
  me: string;
  desired: DesiredState;
  slots: SlotTable;
  events: EventBatcher;
  log: Logger;
  /** Stops tasks here and frees their slots. */
  stop: (topologyId: string, paths: string[]) => Promise<unknown>;
  /** This agent's instance of a path (for the rules other than `keep_replacement`). */
  instance?: (topologyId: string, path: string) => Instance | undefined;
  /** Asks `agent` about a duplicate ({@linkcode RECONCILE_PROTOCOL}); without it every rule is `keep_replacement`. */
  ask?: (agent: string, req: ReconcileRequest, signal: AbortSignal) => Promise<ReconcileResponse>;
  /** Retry delay for an unanswered question, ms (default 2,000). */
  retryMs?: number;
  /** How long to keep asking before falling back to `keep_replacement`, ms (default 60,000). */
  giveUpMs?: number;
}

/** A request of {@linkcode RECONCILE_PROTOCOL}. */
export type ReconcileRequest = v.InferOutput<typeof ReconcileRequestSchema>;
/** A response of {@linkcode RECONCILE_PROTOCOL}. */
export type ReconcileResponse = v.InferOutput<typeof ReconcileResponseSchema>;

/** What {@linkcode reconcileRecord} decided for one record. */
export interface ReconcileDecision {
  /** Duplicates to stop: path → the agent whose instance is kept (absent: the topology was stopped). */
  stop: Map<string, string | undefined>;
  /** Paths that run only here and that the record places nowhere. */
  adopt: string[];
}

/** Decides, without side effects, what this agent does with its instances under `record`. */
export function reconcileRecord(
  me: string,
  record: TopologyRecord,
  leases: { path: string; epoch: number }[],
): ReconcileDecision {
  const stop = new Map<string, string | undefined>();
  const adopt: string[] = [];
  if (record.state === "stopped") {
    for (const l of leases) if (l.epoch <= record.epoch) stop.set(l.path, undefined);
    return { stop, adopt };
  }
  const owner = new Map<string, string>();
  for (const [agent, paths] of Object.entries(record.placement)) for (const p of paths) owner.set(p, agent);
  for (const l of leases) {
    if (l.epoch >= record.epoch) continue;
    const o = owner.get(l.path);
    if (o === me) continue;
    if (o === undefined) {
      if (!record.removing?.includes(l.path)) adopt.push(l.path);
    } else stop.set(l.path, o);
  }
  return { stop, adopt };
}

/** The record with `path` moved from wherever it is placed to `to`, one version on. */
function moved(record: TopologyRecord, path: string, to: string): TopologyRecord {
  const placement: Record<string, string[]> = {};
  for (const [agent, paths] of Object.entries(record.placement)) {
    const rest = paths.filter((p) => p !== path);
    if (rest.length > 0) placement[agent] = rest;
  }
  placement[to] = [...(placement[to] ?? []), path];
  return { ...record, version: record.version + 1, placement, updatedAt: Date.now() };
}

/** A reconciler: watches the records and answers other agents' questions about duplicates. */
export interface Reconciler {
  /** The handler of {@linkcode RECONCILE_PROTOCOL}. */
  answer(req: ReconcileRequest): Promise<ReconcileResponse>;
  /** Stops watching and asking. */
  close(): void;
}

/** Applies {@linkcode reconcileRecord} to every record change, and the topology's rule to every duplicate. */
export function startReconciler(init: ReconcileInit): Reconciler {
  const { me, desired, slots, log } = init;
  const retryMs = init.retryMs ?? 2_000;
  const giveUpMs = init.giveUpMs ?? 60_000;
  const abort = new AbortController();
  // Instances whose stop is under way, or whose fate is being asked: a record that changes again before
  // their slots are freed (a second recovery, a heal that merges records in turn) must not stop, log and
  // report them a second time, nor ask twice.
  const busy = new Set<string>();
  const key = (topologyId: string, path: string, epoch: number) => `${topologyId}\0${path}\0${epoch}`;
  const firstAsked = new Map<string, number>();
  const retries = new Set<ReturnType<typeof setTimeout>>();
  // Record writes of this agent, one at a time per agent, each on the newest record.
  let writes: Promise<unknown> = Promise.resolve();

  const stopDuplicates = (
    record: TopologyRecord,
    stop: Map<string, string | undefined>,
    rule: ReconcileRule,
  ) => {
    const paths = [...stop.keys()];
    const keys = paths.map((p) => key(record.id, p, slots.leaseEpoch(record.id, p) ?? 0));
    for (const k of keys) busy.add(k);
    for (const [path, keptOn] of stop) {
      if (keptOn === undefined) continue;
      log.warn("duplicate task stopped: its other instance is kept", {
        topology: record.id,
        path,
        epoch: slots.leaseEpoch(record.id, path),
        recordEpoch: record.epoch,
        keptOn,
        rule,
      });
      init.events.add({
        type: "task:duplicate-stopped",
        at: Date.now(),
        agent: me,
        topologyId: record.id,
        path,
        keptOn,
        epoch: record.epoch,
        rule,
      });
    }
    if (record.state === "stopped") {
      log.warn("topology was stopped while this agent was cut off; stopping its tasks here", {
        topology: record.id,
        tasks: paths.length,
      });
    }
    return init.stop(record.id, paths).catch((err) =>
      log.error("stopping duplicate tasks failed", { topology: record.id, reason: (err as Error).message })
    ).finally(() => {
      for (const k of keys) busy.delete(k);
    });
  };

  const write = (id: string, change: (r: TopologyRecord) => TopologyRecord | undefined) => {
    const next = writes.then(async () => {
      const r = desired.get(id);
      const w = r && change(r);
      if (w) await desired.put(w);
    });
    // The chain only orders writes; the caller of this one gets its failure from `next`.
    writes = next.catch(() => {});
    return next;
  };

  const ask = async (record: TopologyRecord, path: string, holder: string, rule: ReconcileRule) => {
    const mine = init.instance?.(record.id, path);
    const epoch = slots.leaseEpoch(record.id, path) ?? 0;
    const k = key(record.id, path, epoch);
    if (!mine) return;
    busy.add(k);
    const since = firstAsked.get(k) ?? Date.now();
    firstAsked.set(k, since);
    let res: ReconcileResponse | undefined;
    try {
      res = await init.ask!(holder, {
        topologyId: record.id,
        path,
        epoch: record.epoch,
        version: record.version,
        asker: mine,
      }, AbortSignal.any([abort.signal, AbortSignal.timeout(5_000)]));
    } catch (err) {
      log.info("duplicate task: its other agent did not answer; asking again", {
        topology: record.id,
        path,
        agent: holder,
        reason: (err as Error).message,
      });
    }
    busy.delete(k);
    if (abort.signal.aborted) return;
    if (res?.keep === "answerer" || (!res && Date.now() - since >= giveUpMs)) {
      firstAsked.delete(k);
      if (!res) {
        log.warn("duplicate task: no answer for a minute; falling back to keep_replacement", { path });
      }
      await stopDuplicates(record, new Map([[path, holder]]), res ? rule : "keep_replacement");
      return;
    }
    if (res?.keep === "asker") {
      firstAsked.delete(k);
      log.info("duplicate task kept here: the other instance stopped", {
        topology: record.id,
        path,
        stoppedOn: holder,
        rule,
      });
      return;
    }
    // No answer, or the answerer's record differs from ours: judge again after a while.
    const t = setTimeout(() => {
      retries.delete(t);
      const r = desired.get(record.id);
      if (r) apply(r);
    }, retryMs);
    retries.add(t);
  };

  const apply = (record: TopologyRecord) => {
    if (abort.signal.aborted) return;
    const leases = slots.leased(record.id).map((path) => ({
      path,
      epoch: slots.leaseEpoch(record.id, path) ?? 0,
    })).filter((l) => !busy.has(key(record.id, l.path, l.epoch)));
    if (leases.length === 0) return;
    const { stop, adopt } = reconcileRecord(me, record, leases);
    const rule: ReconcileRule = init.ask && init.instance
      ? record.reconcile ?? "keep_replacement"
      : "keep_replacement";
    if (stop.size > 0 && (record.state === "stopped" || rule === "keep_replacement")) {
      void stopDuplicates(record, stop, rule);
    } else {
      for (const [path, holder] of stop) void ask(record, path, holder!, rule);
    }
    if (adopt.length > 0) {
      log.warn("the topology record places none of these tasks, which run only here; adopting them", {
        topology: record.id,
        tasks: adopt.length,
      });
      const placement = { ...record.placement, [me]: [...(record.placement[me] ?? []), ...adopt] };
      void desired.put({ ...record, version: record.version + 1, placement, updatedAt: Date.now() });
    }
  };

  const answer = async (req: ReconcileRequest): Promise<ReconcileResponse> => {
    const record = desired.get(req.topologyId);
    const rule: ReconcileRule = record?.reconcile ?? "keep_replacement";
    if (!record) return { keep: "retry", rule }; // the record has not reached us yet
    if (record.state === "stopped") return { keep: "answerer", rule };
    const placedHere = (record.placement[me] ?? []).includes(req.path);
    if (record.epoch !== req.epoch || record.version !== req.version || !placedHere) {
      return { keep: "retry", rule }; // our records differ: the asker judges again with the newest
    }
    const epoch = slots.leaseEpoch(record.id, req.path);
    const mine = epoch === undefined ? undefined : init.instance?.(record.id, req.path);
    const keep = mine ? keepOf(rule, req.asker, mine) : "asker";
    if (keep === "answerer") return { keep, rule, ...(mine ? { answerer: mine } : {}) };
    if (mine) {
      const k = key(record.id, req.path, epoch!);
      if (busy.has(k)) return { keep: "retry", rule };
      void stopDuplicates(record, new Map([[req.path, req.asker.agent]]), rule);
    }
    // The path moves to the asker before we answer, so that the asker's next judgement finds it there.
    await write(
      record.id,
      (r) => (r.placement[me] ?? []).includes(req.path) ? moved(r, req.path, req.asker.agent) : undefined,
    );
    return { keep, rule, ...(mine ? { answerer: mine } : {}) };
  };

  const off = desired.changes.on(apply);
  return {
    answer,
    close: () => {
      abort.abort();
      off();
      for (const t of retries) clearTimeout(t);
      retries.clear();
    },
  };
}

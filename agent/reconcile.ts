/**
 * Reconcile on heal: after a partition (or a false death under load) a task path can run twice — the
 * original on an agent that a majority lost sight of, and the replacement that majority started under a
 * newer epoch. Each agent compares its own instances with every topology record it learns and applies the
 * rule `keep_replacement` (Nomad's name), the only one that needs no further agreement: the record is the
 * truth. An instance leased under an older epoch than the record's, whose path the record places on
 * another agent, is a duplicate: it is stopped and reported (`task:duplicate-stopped`, and in the agent
 * log). An instance the record places nowhere (the majority found no slot for it and declared it lost) is
 * the only one left, so it keeps running and this agent writes itself into the record (adopts it). A
 * stopped record stops every instance leased under its epoch or an older one (`topology stop` while this
 * agent was cut off). Instances leased under the record's own epoch and not yet in it belong to a
 * commander still at work; `orphan_leases.ts` handles those.
 *
 * @module
 */
import type { DesiredState } from "./desired_state.ts";
import type { EventBatcher } from "./event_batcher.ts";
import type { Logger } from "./log.ts";
import type { TopologyRecord } from "./protocols.ts";
import type { SlotTable } from "./slots.ts";

/** What the reconciler needs. */
export interface ReconcileInit {
  me: string;
  desired: DesiredState;
  slots: SlotTable;
  events: EventBatcher;
  log: Logger;
  /** Stops tasks here and frees their slots. */
  stop: (topologyId: string, paths: string[]) => Promise<unknown>;
}

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
    if (o === undefined) adopt.push(l.path);
    else stop.set(l.path, o);
  }
  return { stop, adopt };
}

/** Applies {@linkcode reconcileRecord} to every record change; returns a function that stops watching. */
export function watchSuperseded(init: ReconcileInit): () => void {
  const { me, desired, slots, log } = init;
  // Instances whose stop is under way: a record that changes again before their slots are freed (a second
  // recovery, a heal that merges records in turn) must not stop, log and report them a second time.
  const stopping = new Set<string>();
  const key = (topologyId: string, path: string, epoch: number) => `${topologyId}\0${path}\0${epoch}`;
  const apply = (record: TopologyRecord) => {
    const leases = slots.leased(record.id).map((path) => ({
      path,
      epoch: slots.leaseEpoch(record.id, path) ?? 0,
    })).filter((l) => !stopping.has(key(record.id, l.path, l.epoch)));
    if (leases.length === 0) return;
    const { stop, adopt } = reconcileRecord(me, record, leases);
    if (stop.size > 0) {
      const paths = [...stop.keys()];
      const keys = leases.filter((l) => stop.has(l.path)).map((l) => key(record.id, l.path, l.epoch));
      for (const k of keys) stopping.add(k);
      for (const [path, keptOn] of stop) {
        if (keptOn === undefined) continue;
        log.warn("duplicate task stopped: the topology record places it on another agent", {
          topology: record.id,
          path,
          epoch: slots.leaseEpoch(record.id, path),
          recordEpoch: record.epoch,
          keptOn,
          rule: "keep_replacement",
        });
        init.events.add({
          type: "task:duplicate-stopped",
          at: Date.now(),
          agent: me,
          topologyId: record.id,
          path,
          keptOn,
          epoch: record.epoch,
          rule: "keep_replacement",
        });
      }
      if (record.state === "stopped") {
        log.warn("topology was stopped while this agent was cut off; stopping its tasks here", {
          topology: record.id,
          tasks: paths.length,
        });
      }
      init.stop(record.id, paths).catch((err) =>
        log.error("stopping duplicate tasks failed", { topology: record.id, reason: (err as Error).message })
      ).finally(() => {
        for (const k of keys) stopping.delete(k);
      });
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
  return desired.changes.on(apply);
}

/**
 * Catch-up when a peer comes back from the dead — a partition healed, or a false death refuted. Gossip
 * sent while it was away is never replayed, and the digest comparison on probes needs the same peer twice
 * before it pulls (`desired_sync.ts`); a healed half would learn the other half's newer topology records
 * only after several probe rounds, while duplicate tasks keep running. So on each dead → alive transition
 * this agent pulls that peer's topology records and exchanges key-values with it at once; the peer does
 * the same towards us, so both directions are covered. Nothing periodic: one exchange per return.
 *
 * Not every agent does it: each syncs with a returning peer with probability `SYNCERS_PER_RETURN / live`,
 * so about that many agents sync with each returner whatever N (all of them up to that many agents).
 * Every agent syncing was O(N) exchanges and as many new connections towards the one returner: at 100
 * agents on 2 cores, a refuted false death brought ~200 requests down on an agent just back from being
 * starved, which starved it again — the mesh never formed. After a partition into halves each agent still
 * syncs with about that many of the other half, and what one learns spreads by gossip and digests.
 *
 * @module
 */
import type { Membership } from "../../mesh/mod.ts";
import type { DesiredState } from "../desired/mod.ts";
import type { KvReplication } from "./kv_replication.ts";
import type { Logger } from "../log.ts";

/** About this many agents sync with each peer that returns. */
export const SYNCERS_PER_RETURN = 5;

/** Syncs records and key-values with peers that return; returns a function that stops. */
export function syncOnReturn(
  init: {
    membership: Pick<Membership, "events">;
    /** Members alive or suspect, this one left out (the N the probability divides by). */
    liveCount: () => number;
    desired: Pick<DesiredState, "syncFrom">;
    replication?: Pick<KvReplication, "syncWith">;
    log: Logger;
    /** Random numbers in [0, 1) (tests pass their own). */
    random?: () => number;
  },
): () => void {
  const { membership, desired, log } = init;
  const random = init.random ?? Math.random;
  const gone = new Set<string>();
  return membership.events.on((e) => {
    if (e.type === "agent:dead" || e.type === "agent:left") {
      gone.add(e.id);
      return;
    }
    if ((e.type !== "agent:alive" && e.type !== "agent:joined") || !gone.delete(e.id)) return;
    const live = init.liveCount();
    if (live > SYNCERS_PER_RETURN && random() * live >= SYNCERS_PER_RETURN) return;
    const signal = AbortSignal.timeout(10_000);
    desired.syncFrom(e.id, { signal }).then((n) => {
      if (n > 0) {
        log.info("pulled topology records from a peer back from the dead", { from: e.id, records: n });
      }
      // Failing here leaves the digest sync (desired_sync.ts) to find the difference at the next probe.
    }).catch(() => {});
    init.replication?.syncWith(e.id, { signal }).then((n) => {
      if (n > 0) log.info("synced key-values with a peer back from the dead", { from: e.id, entries: n });
      // Likewise: the key-value digests still differ at the next probe, which syncs again.
    }).catch(() => {});
  });
}

/**
 * Keeps the replicated topology records converged. A record spreads by one gossip message (and a pull when
 * an agent joins); an agent that missed that message — not yet subscribed, or connected to the rest only
 * later — would never learn of it. Every membership probe and ack carries a digest of the sender's records
 * (the same one-peer rounds as failure detection, so no extra traffic); when a peer's digest differs from
 * ours twice in a row (one difference is usually gossip still in flight), we pull its records, at most once
 * per `minIntervalMs` per peer. Newer records win on both sides, so the peer that lacks ours pulls them
 * from us the same way.
 *
 * @module
 */
import type { Membership, MeshNode } from "../../mesh/mod.ts";
import type { DesiredState } from "./desired_state.ts";
import type { Logger } from "../log.ts";

/** Key of the topology records' digest among the membership digests. */
export const TOPOLOGIES_DIGEST = "topologies";

/** Pulls records from peers whose digest keeps differing; returns a function that stops. */
export function syncDesiredOnDigest(
  init: {
    node: MeshNode;
    membership: Membership;
    desired: DesiredState;
    log: Logger;
    minIntervalMs?: number;
    /** The clock `minIntervalMs` is measured on (default `Date.now`; unit tests pass a fake one). */
    now?: () => number;
  },
): () => void {
  const { membership, desired, log } = init;
  const minInterval = init.minIntervalMs ?? 5_000;
  const now = init.now ?? (() => Date.now());
  const differing = new Map<string, number>();
  const lastPull = new Map<string, number>();
  const unprovide = membership.provideDigest(TOPOLOGIES_DIGEST, () => desired.digest());
  const off = membership.digests.on((hb) => {
    const theirs = hb.digests[TOPOLOGIES_DIGEST];
    if (theirs === undefined || theirs === desired.digest()) {
      differing.delete(hb.id);
      return;
    }
    const times = (differing.get(hb.id) ?? 0) + 1;
    differing.set(hb.id, times);
    if (times < 2 || now() - (lastPull.get(hb.id) ?? 0) < minInterval) return;
    lastPull.set(hb.id, now());
    desired.syncFrom(hb.id, { signal: AbortSignal.timeout(10_000) }).then((n) => {
      if (n > 0) {
        log.info("pulled topology records a peer's digest said we lacked", { from: hb.id, records: n });
      }
      // A failed pull is retried by the next differing digest (a probe or two later).
    }).catch(() => {});
  });
  return () => {
    off();
    unprovide();
  };
}

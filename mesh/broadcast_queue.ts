/**
 * Membership updates waiting to be gossiped, each sent a bounded number of times, the least sent first; a
 * newer update about a member replaces the queued one (memberlist's `TransmitLimitedQueue`). Buckets by
 * transmit count keep `take` O(items taken), whatever the queue length.
 *
 * Unlike memberlist's UDP datagrams to random members, shoal gossips along links, and knows which links
 * hold an update already: the one it came from, those that sent it again, those it went to. A send to one of
 * them still counts as one of the update's transmits (so an update leaves the queue when it did before) but
 * puts nothing on the wire. Forming a mesh of 40 agents, this halved what each agent received: gossiped
 * entries 390 -> 193, membership bytes 144 -> 79 KB per agent (CPU unchanged within noise).
 *
 * @module
 */
import type { MemberUpdate } from "./swim_types.ts";

interface Item {
  update: MemberUpdate;
  transmits: number;
  /** Rides along on messages sent anyway (probes, acks, rounds for other news); schedules nothing. */
  lazy: boolean;
  /** Peers known to hold this update (it came from them, they sent it again, or it went to them). */
  knownBy: Set<string>;
}

const isDeath = (u: MemberUpdate) => u.st === "dead" || u.st === "left";

/** A transmit-limited queue of member updates. */
export class BroadcastQueue {
  readonly #byMember = new Map<string, Item>();
  /** `#buckets[k]` holds the items sent `k` times. */
  readonly #buckets: Set<Item>[] = [];

  #eager = 0;
  #deaths = 0;

  /** Number of queued deaths and leaves. */
  get deaths(): number {
    return this.#deaths;
  }

  /** Number of queued updates. */
  get size(): number {
    return this.#byMember.size;
  }

  /** Number of queued updates that are worth a gossip round of their own (not `lazy`). */
  get eager(): number {
    return this.#eager;
  }

  /**
   * Queues `update`, replacing any queued update about the same member. A `lazy` update (news nobody waits
   * for, such as a changed load figure) is only piggybacked; replacing an eager one keeps it eager.
   */
  push(update: MemberUpdate, lazy = false, from?: string): void {
    const old = this.#byMember.get(update.id);
    if (old) {
      this.#buckets[old.transmits]?.delete(old);
      if (!old.lazy) this.#eager--;
      if (isDeath(old.update)) this.#deaths--;
    }
    if (isDeath(update)) this.#deaths++;
    const knownBy = new Set<string>(from === undefined ? [] : [from]);
    const item = { update, transmits: 0, lazy: lazy && (old?.lazy ?? true), knownBy };
    if (!item.lazy) this.#eager++;
    this.#byMember.set(update.id, item);
    (this.#buckets[0] ??= new Set()).add(item);
  }

  /** `from` sent `update` (again): it holds the queued update if it is the same one. */
  heard(update: MemberUpdate, from: string): void {
    const item = this.#byMember.get(update.id);
    if (item && item.update.inc === update.inc && item.update.st === update.st) item.knownBy.add(from);
  }

  /** Whether any of the `max` least sent updates (those {@linkcode take} would count) is news to `to`. */
  newsFor(to: string, max: number): boolean {
    let counted = 0;
    for (let k = 0; k < this.#buckets.length && counted < max; k++) {
      for (const item of this.#buckets[k] ?? []) {
        if (counted++ >= max) break;
        if (!item.knownBy.has(to)) return true;
      }
    }
    return false;
  }

  /**
   * The `max` least sent updates, each counted as sent once (an update leaves after `limit` sends), minus
   * those `to` is known to hold: they count as sent to it but are not returned. Which updates are counted
   * does not depend on `to`, so knowing holders saves bytes without spending transmits faster: counting
   * past `max` for a peer that holds everything would use up every queued update's sends on one message.
   */
  take(max: number, limit: number, to?: string): MemberUpdate[] {
    const out: MemberUpdate[] = [];
    const moved: Item[] = [];
    let counted = 0;
    for (let k = 0; k < this.#buckets.length && counted < max; k++) {
      const bucket = this.#buckets[k];
      if (!bucket) continue;
      for (const item of bucket) {
        if (counted++ >= max) break;
        bucket.delete(item);
        if (to === undefined || !item.knownBy.has(to)) {
          out.push(item.update);
          if (to !== undefined) item.knownBy.add(to);
        }
        item.transmits++;
        if (item.transmits < limit) moved.push(item);
        else {
          this.#byMember.delete(item.update.id);
          if (!item.lazy) this.#eager--;
          if (isDeath(item.update)) this.#deaths--;
        }
      }
    }
    for (const item of moved) (this.#buckets[item.transmits] ??= new Set()).add(item);
    return out;
  }
}

/**
 * Membership updates waiting to be gossiped, each sent a bounded number of times, the least sent first; a
 * newer update about a member replaces the queued one (memberlist's `TransmitLimitedQueue`). Buckets by
 * transmit count keep `take` O(items taken), whatever the queue length.
 *
 * @module
 */
import type { MemberUpdate } from "./swim_types.ts";

interface Item {
  update: MemberUpdate;
  transmits: number;
  /** Rides along on messages sent anyway (probes, acks, rounds for other news); schedules nothing. */
  lazy: boolean;
}

/** A transmit-limited queue of member updates. */
export class BroadcastQueue {
  readonly #byMember = new Map<string, Item>();
  /** `#buckets[k]` holds the items sent `k` times. */
  readonly #buckets: Set<Item>[] = [];

  #eager = 0;

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
  push(update: MemberUpdate, lazy = false): void {
    const old = this.#byMember.get(update.id);
    if (old) {
      this.#buckets[old.transmits]?.delete(old);
      if (!old.lazy) this.#eager--;
    }
    const item = { update, transmits: 0, lazy: lazy && (old?.lazy ?? true) };
    if (!item.lazy) this.#eager++;
    this.#byMember.set(update.id, item);
    (this.#buckets[0] ??= new Set()).add(item);
  }

  /** Up to `max` updates, least sent first; each counts as sent once and leaves after `limit` sends. */
  take(max: number, limit: number): MemberUpdate[] {
    const out: MemberUpdate[] = [];
    const moved: Item[] = [];
    for (let k = 0; k < this.#buckets.length && out.length < max; k++) {
      const bucket = this.#buckets[k];
      if (!bucket) continue;
      for (const item of bucket) {
        if (out.length >= max) break;
        bucket.delete(item);
        out.push(item.update);
        item.transmits++;
        if (item.transmits < limit) moved.push(item);
        else {
          this.#byMember.delete(item.update.id);
          if (!item.lazy) this.#eager--;
        }
      }
    }
    for (const item of moved) (this.#buckets[item.transmits] ??= new Set()).add(item);
    return out;
  }
}

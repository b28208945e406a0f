/**
 * The pool's scheduling decision, pure: which queued topology gets the free slots next. Higher priority
 * first; among equal priorities, round-robin over fair-share groups (DIANE's first algorithm: the group
 * served longest ago goes next), first come first served within a group. A topology starts whole or not
 * at all, and nothing overtakes the head of the queue (no backfill), so a large topology is never starved
 * by small ones behind it; only a topology that could not fit even an empty pool is passed over.
 *
 * @module
 */
import type { QueueEntry } from "./protocols.ts";

/** What the decision needs to know besides the entries. */
export interface DecideInput {
  /** Now (ms since epoch). */
  now: number;
  /** Whether the entry fits the free slots now (placement rules included). */
  fits: (entry: QueueEntry) => boolean;
  /** Whether it would fit the whole pool were every slot free. */
  everFits: (entry: QueueEntry) => boolean;
  /** Whether a peer is alive. */
  alive: (peer: string) => boolean;
  /** How long a scheduler that died while starting an entry is waited for (its leases are orphaned first). */
  orphanGraceMs: number;
  /** How long after a failed start an entry is tried again. */
  retryAfterMs: number;
}

/** The decision. */
export interface Decision {
  /** Start this one now. */
  start?: QueueEntry;
  /** Queued entries in the order they will start, each with why it waits. */
  order: { entry: QueueEntry; position: number; waiting: string }[];
  /** Entries a dead scheduler left `starting`: queue them again. */
  requeue: QueueEntry[];
}

const LIVE = new Set(["starting", "running"]);

/** Queued entries in starting order: priority, then round-robin over share groups, then FIFO. */
export function queueOrder(entries: readonly QueueEntry[]): QueueEntry[] {
  const served = new Map<string, number>();
  for (const e of entries) {
    if (e.startedAt === undefined || e.state === "queued" || e.state === "cancelled") continue;
    served.set(e.share, Math.max(served.get(e.share) ?? -Infinity, e.startedAt));
  }
  const queued = entries.filter((e) => e.state === "queued");
  const byPriority = Map.groupBy(queued, (e) => e.priority);
  const out: QueueEntry[] = [];
  for (const p of [...byPriority.keys()].sort((a, b) => b - a)) {
    const groups = new Map<string, QueueEntry[]>();
    for (const e of byPriority.get(p)!) {
      (groups.get(e.share) ?? groups.set(e.share, []).get(e.share)!).push(e);
    }
    for (const list of groups.values()) list.sort(fifo);
    // Virtual service times: each pick moves its group to the back.
    let tick = Math.max(0, ...served.values()) + 1;
    const last = new Map([...groups.keys()].map((g) => [g, served.get(g) ?? -Infinity]));
    while (groups.size > 0) {
      const g = [...groups.keys()].sort((a, b) =>
        last.get(a)! - last.get(b)! || fifo(groups.get(a)![0]!, groups.get(b)![0]!)
      )[0]!;
      const list = groups.get(g)!;
      out.push(list.shift()!);
      last.set(g, tick++);
      if (list.length === 0) groups.delete(g);
    }
  }
  return out;
}

function fifo(a: QueueEntry, b: QueueEntry): number {
  return a.queuedAt - b.queuedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Decides what the scheduler does now. */
export function decide(entries: readonly QueueEntry[], input: DecideInput): Decision {
  const requeue = entries.filter((e) =>
    e.state === "starting" && e.startedBy !== undefined && !input.alive(e.startedBy) &&
    input.now - e.updatedAt >= input.orphanGraceMs
  );
  // One start at a time: while one is under way the free view is about to change.
  const busy = entries.some((e) => e.state === "starting" && !requeue.includes(e));
  const order: Decision["order"] = [];
  let start: QueueEntry | undefined;
  let blocked: QueueEntry | undefined;
  for (const entry of queueOrder(entries)) {
    const position = order.length + 1;
    if (!input.everFits(entry)) {
      order.push({ entry, position, waiting: "larger than the whole pool: waits for it to grow" });
      continue;
    }
    if (blocked) {
      order.push({ entry, position, waiting: `behind "${blocked.id}"` });
      continue;
    }
    const retryAt = entry.failedAt !== undefined ? entry.failedAt + input.retryAfterMs : 0;
    if (busy) order.push({ entry, position, waiting: "another topology is starting" });
    else if (input.now < retryAt) order.push({ entry, position, waiting: entry.reason ?? "retrying" });
    else if (input.fits(entry)) {
      start = entry;
      order.push({ entry, position, waiting: "starting" });
    } else order.push({ entry, position, waiting: `needs ${entry.tasks} free slot(s)` });
    blocked = entry;
  }
  return { ...(start ? { start } : {}), order, requeue };
}

/** True while an entry holds (or is taking) slots. */
export function isLive(entry: QueueEntry): boolean {
  return LIVE.has(entry.state);
}

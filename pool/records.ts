/**
 * The replicated queue of one agent: entries gossiped on change, pulled from a peer on join, and kept
 * converged by a digest riding on membership probes (as topology and environment records are). The
 * highest (version, updatedAt) wins, so the queue survives the peer that queued and any one scheduler.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { EventHub, type Membership, type MeshNode, request } from "../mesh/mod.ts";
import {
  POOL_PROTOCOL,
  POOL_TOPIC,
  PoolResponseSchema,
  type QueueEntry,
  QueueEntrySchema,
} from "./protocols.ts";

/** Key of the queue's digest among the membership digests. */
export const POOL_DIGEST = "pool";

/** True when `a` supersedes `b`. */
export function newerEntry(a: QueueEntry, b: QueueEntry): boolean {
  if (a.version !== b.version) return a.version > b.version;
  if (a.updatedAt !== b.updatedAt) return a.updatedAt > b.updatedAt;
  return (a.startedBy ?? "") > (b.startedBy ?? "");
}

/** Replicated queue entries. */
export class PoolRecords {
  /** `{before, after}` of every entry that changed here. */
  readonly changes: EventHub<{ before: QueueEntry | undefined; after: QueueEntry }> = new EventHub();
  readonly #node: MeshNode;
  readonly #entries = new Map<string, QueueEntry>();
  #digest: string | undefined;
  #offs: (() => void)[] = [];

  constructor(node: MeshNode) {
    this.#node = node;
  }

  /** Subscribes to the gossip and keeps in step with peers whose digest differs. */
  start(membership: Membership): void {
    this.#offs.push(this.#node.subscribe(POOL_TOPIC, QueueEntrySchema, (e) => this.merge(e)));
    this.#offs.push(membership.provideDigest(POOL_DIGEST, () => this.digest()));
    const differing = new Map<string, number>();
    const lastPull = new Map<string, number>();
    this.#offs.push(membership.digests.on((d) => {
      const theirs = d.digests[POOL_DIGEST];
      if (theirs === undefined || theirs === this.digest()) return void differing.delete(d.id);
      const n = (differing.get(d.id) ?? 0) + 1;
      differing.set(d.id, n);
      if (n < 2 || Date.now() - (lastPull.get(d.id) ?? 0) < 5_000) return;
      lastPull.set(d.id, Date.now());
      void this.syncFrom(d.id, { signal: AbortSignal.timeout(10_000) }).catch(() => {});
    }));
  }

  /** Merges an entry; true when it was newer than ours. */
  merge(entry: QueueEntry): boolean {
    const before = this.#entries.get(entry.id);
    if (before && !newerEntry(entry, before)) return false;
    this.#entries.set(entry.id, entry);
    this.#digest = undefined;
    this.changes.emit({ before, after: entry });
    return true;
  }

  /** Merges and gossips. */
  async put(entry: QueueEntry): Promise<boolean> {
    const newer = this.merge(entry);
    if (newer) await this.#node.publish(POOL_TOPIC, entry).catch(() => {});
    return newer;
  }

  /** Pulls every entry from `peer`. */
  async syncFrom(peer: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    const res = await request(this.#node, peer, POOL_PROTOCOL, { op: "list" }, {
      schema: PoolResponseSchema,
      maxBytes: 64 * 1024 * 1024,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let n = 0;
    for (const e of res.entries ?? []) if (this.merge(e)) n++;
    return n;
  }

  /** Equal digests, same entries. */
  digest(): string {
    if (this.#digest === undefined) {
      const h = createHash("sha256");
      for (const e of [...this.#entries.values()].sort((a, b) => a.id < b.id ? -1 : 1)) {
        h.update(`${e.id}\0${e.version}\0${e.updatedAt}\0${e.startedBy ?? ""}\n`);
      }
      this.#digest = h.digest("hex").slice(0, 32);
    }
    return this.#digest;
  }

  get(id: string): QueueEntry | undefined {
    return this.#entries.get(id);
  }

  entries(): QueueEntry[] {
    return [...this.#entries.values()];
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
  }
}

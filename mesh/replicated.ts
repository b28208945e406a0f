/**
 * A replicated set of records keyed by ID, the way environments and the pool's queue are kept on every
 * agent: a record is gossiped on change, everything is pulled from a peer on join, and a digest riding on
 * membership probes pulls again from a peer whose digest differed twice (at most once per 5 s per peer). A
 * record replaces the one held only when `newer` says so, so all copies converge on the same records.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type * as v from "valibot";
import { EventHub } from "./event_hub.ts";
import type { Membership } from "./membership.ts";
import type { MeshNode } from "./node.ts";
import { request } from "./rpc.ts";

/** What a {@linkcode Replicated} set is made of. */
export interface ReplicatedInit<T extends { id: string }, R extends v.GenericSchema> {
  /** Gossip topic of changed records. */
  topic: string;
  /** Schema of a record on the topic. */
  schema: v.GenericSchema;
  /** Key of this set's digest among the membership digests. */
  digestKey: string;
  /** Protocol answering `{op: "list"}` with every record. */
  protocol: string;
  /** Schema of that answer, and the records in it. */
  listSchema: R;
  listed: (res: v.InferOutput<R>) => unknown[];
  /** True when `a` supersedes `b`. */
  newer: (a: T, b: T) => boolean;
  /** What of a record (besides its ID) the digest covers: equal for equal versions. */
  version: (r: T) => string;
}

/** Records replicated on every agent. */
export class Replicated<T extends { id: string }, R extends v.GenericSchema = v.GenericSchema> {
  /** `{before, after}` of every record that changed here. */
  readonly changes: EventHub<{ before: T | undefined; after: T }> = new EventHub();
  readonly #node: MeshNode;
  readonly #init: ReplicatedInit<T, R>;
  readonly #records = new Map<string, T>();
  #digest: string | undefined;
  #offs: (() => void)[] = [];

  constructor(node: MeshNode, init: ReplicatedInit<T, R>) {
    this.#node = node;
    this.#init = init;
  }

  /** Subscribes to the gossip and keeps in step with peers whose digest differs. */
  start(membership: Membership): void {
    const { topic, schema, digestKey } = this.#init;
    this.#offs.push(this.#node.subscribe(topic, schema, (r) => this.merge(r as T)));
    this.#offs.push(membership.provideDigest(digestKey, () => this.digest()));
    const differing = new Map<string, number>();
    const lastPull = new Map<string, number>();
    this.#offs.push(membership.digests.on((d) => {
      const theirs = d.digests[digestKey];
      if (theirs === undefined || theirs === this.digest()) return void differing.delete(d.id);
      const n = (differing.get(d.id) ?? 0) + 1;
      differing.set(d.id, n);
      if (n < 2 || Date.now() - (lastPull.get(d.id) ?? 0) < 5_000) return;
      lastPull.set(d.id, Date.now());
      // Retried when the digests still differ after the next probes.
      void this.syncFrom(d.id, { signal: AbortSignal.timeout(10_000) }).catch(() => {});
    }));
  }

  /** Merges a record; true when it was newer than ours. */
  merge(record: T): boolean {
    const before = this.#records.get(record.id);
    if (before && !this.#init.newer(record, before)) return false;
    this.#records.set(record.id, record);
    this.#digest = undefined;
    this.changes.emit({ before, after: record });
    return true;
  }

  /** Gossips `record` as it is (merged before; receivers ignore it if they hold a newer one). */
  async announce(record: T): Promise<void> {
    // Peers that miss the gossip get the record from the digest sync.
    await this.#node.publish(this.#init.topic, record).catch(() => {});
  }

  /** Merges and gossips. */
  async put(record: T): Promise<boolean> {
    const newer = this.merge(record);
    // Merged here either way; peers that miss the gossip get it from the digest sync.
    if (newer) await this.#node.publish(this.#init.topic, record).catch(() => {});
    return newer;
  }

  /** Pulls every record from `peer`; returns how many were newer. */
  async syncFrom(peer: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    const res = await request(this.#node, peer, this.#init.protocol, { op: "list" }, {
      schema: this.#init.listSchema,
      maxBytes: 64 * 1024 * 1024,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let n = 0;
    for (const r of this.#init.listed(res)) if (this.merge(r as T)) n++;
    return n;
  }

  /** Equal digests, same records. */
  digest(): string {
    if (this.#digest === undefined) {
      const h = createHash("sha256");
      for (const r of [...this.#records.values()].sort((a, b) => a.id < b.id ? -1 : 1)) {
        h.update(`${r.id}\0${this.#init.version(r)}\n`);
      }
      this.#digest = h.digest("hex").slice(0, 32);
    }
    return this.#digest;
  }

  get(id: string): T | undefined {
    return this.#records.get(id);
  }

  /** Every record held here. */
  values(): T[] {
    return [...this.#records.values()];
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
  }
}

/**
 * The replicated environment records of one agent: gossiped on change, pulled from a peer on join, and
 * kept converged by a digest riding on membership probes (as topology records are). The highest
 * (epoch, seq, updatedAt) wins.
 *
 * @module
 */
import { createHash } from "node:crypto";
import * as v from "valibot";
import { EventHub, type Membership, type MeshNode, request } from "../mesh/mod.ts";
import { ENV_PROTOCOL, ENV_TOPIC, EnvRecordSchema, EnvResponseSchema } from "./protocols.ts";
import type { EnvRecord } from "./types.ts";

/** Key of the environments' digest among the membership digests. */
export const ENV_DIGEST = "envs";

/** True when `a` supersedes `b`. */
export function newerEnv(a: EnvRecord, b: EnvRecord): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.seq !== b.seq) return a.seq > b.seq;
  return a.updatedAt > b.updatedAt;
}

/** Replicated environment records. */
export class EnvRecords {
  /** `{before, after}` of every record that changed here. */
  readonly changes: EventHub<{ before: EnvRecord | undefined; after: EnvRecord }> = new EventHub();
  readonly #node: MeshNode;
  readonly #records = new Map<string, EnvRecord>();
  #digest: string | undefined;
  #offs: (() => void)[] = [];

  constructor(node: MeshNode) {
    this.#node = node;
  }

  /** Subscribes to the gossip and keeps in step with peers whose digest differs. */
  start(membership: Membership): void {
    this.#offs.push(this.#node.subscribe(ENV_TOPIC, EnvRecordSchema, (r) => this.merge(r as EnvRecord)));
    this.#offs.push(membership.provideDigest(ENV_DIGEST, () => this.digest()));
    const differing = new Map<string, number>();
    const lastPull = new Map<string, number>();
    this.#offs.push(membership.digests.on((d) => {
      const theirs = d.digests[ENV_DIGEST];
      if (theirs === undefined || theirs === this.digest()) return void differing.delete(d.id);
      const n = (differing.get(d.id) ?? 0) + 1;
      differing.set(d.id, n);
      if (n < 2 || Date.now() - (lastPull.get(d.id) ?? 0) < 5_000) return;
      lastPull.set(d.id, Date.now());
      void this.syncFrom(d.id, { signal: AbortSignal.timeout(10_000) }).catch(() => {});
    }));
  }

  /** Merges a record; true when it was newer than ours. */
  merge(record: EnvRecord): boolean {
    const before = this.#records.get(record.id);
    if (before && !newerEnv(record, before)) return false;
    this.#records.set(record.id, record);
    this.#digest = undefined;
    this.changes.emit({ before, after: record });
    return true;
  }

  /** Merges and gossips. */
  async put(record: EnvRecord): Promise<boolean> {
    const newer = this.merge(record);
    if (newer) await this.#node.publish(ENV_TOPIC, record).catch(() => {});
    return newer;
  }

  /** Pulls every record from `peer`. */
  async syncFrom(peer: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    const res = await request(this.#node, peer, ENV_PROTOCOL, { op: "list" }, {
      schema: EnvResponseSchema,
      maxBytes: 64 * 1024 * 1024,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let n = 0;
    for (const r of res.records ?? []) if (this.merge(r as EnvRecord)) n++;
    return n;
  }

  /** Equal digests, same records. */
  digest(): string {
    if (this.#digest === undefined) {
      const h = createHash("sha256");
      for (const r of [...this.#records.values()].sort((a, b) => a.id < b.id ? -1 : 1)) {
        h.update(`${r.id}\0${r.epoch}\0${r.seq}\0${r.updatedAt}\n`);
      }
      this.#digest = h.digest("hex").slice(0, 32);
    }
    return this.#digest;
  }

  get(id: string): EnvRecord | undefined {
    return this.#records.get(id);
  }

  /** The live (not destroyed) environment running topology `topologyId`. */
  byTopology(topologyId: string): EnvRecord | undefined {
    for (const r of this.#records.values()) if (r.topologyId === topologyId && !r.destroyed) return r;
    return undefined;
  }

  records(): EnvRecord[] {
    return [...this.#records.values()];
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
  }
}

/** Checks a record read from anywhere. */
export function parseEnvRecord(x: unknown): EnvRecord {
  return v.parse(EnvRecordSchema, x) as EnvRecord;
}

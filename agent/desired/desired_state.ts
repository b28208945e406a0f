/**
 * The desired state of every active topology, replicated on every agent: records gossiped on change and
 * pulled from a peer on join (gossip sent while a peer was away is never replayed). The last
 * (epoch, version) wins, so every agent can answer "what should be running".
 *
 * @module
 */
import { createHash } from "node:crypto";
import { EventHub, handleRequests, type MeshNode, request } from "../../mesh/mod.ts";
import {
  TOPOLOGIES_PROTOCOL,
  TOPOLOGIES_TOPIC,
  TopologiesRequestSchema,
  TopologiesResponseSchema,
  type TopologyRecord,
  TopologyRecordSchema,
} from "../wire/mod.ts";

/** True when `a` supersedes `b`. */
export function newerRecord(a: TopologyRecord, b: TopologyRecord): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.version !== b.version) return a.version > b.version;
  if (a.updatedAt !== b.updatedAt) return a.updatedAt > b.updatedAt;
  return a.commander > b.commander;
}

/** Replicated topology records. */
export class DesiredState implements AsyncDisposable {
  readonly changes: EventHub<TopologyRecord> = new EventHub();
  readonly #node: MeshNode;
  readonly #records = new Map<string, TopologyRecord>();
  #off: (() => void) | undefined;
  #digest: string | undefined;

  constructor(node: MeshNode) {
    this.#node = node;
  }

  /** Subscribes to the gossip and serves the protocol. */
  async start(): Promise<void> {
    this.#off = this.#node.subscribe(TOPOLOGIES_TOPIC, TopologyRecordSchema, (r) => this.merge(r));
    await handleRequests(this.#node, TOPOLOGIES_PROTOCOL, {
      schema: TopologiesRequestSchema,
      maxBytes: 16 * 1024 * 1024,
      handler: async (req) => {
        if (req.op === "put") await this.put(req.record);
        return { records: this.records() };
      },
    });
  }

  /** Merges a record; returns true when it was newer than what we had. */
  merge(record: TopologyRecord): boolean {
    const have = this.#records.get(record.id);
    if (have && !newerRecord(record, have)) return false;
    this.#records.set(record.id, record);
    this.#digest = undefined;
    this.changes.emit(record);
    return true;
  }

  /** Stores a record and gossips it. */
  async put(record: TopologyRecord): Promise<void> {
    // Stored here either way; peers that miss the gossip get it from the digest sync.
    if (this.merge(record)) await this.#node.publish(TOPOLOGIES_TOPIC, record).catch(() => {});
  }

  /** Pulls every record from `peer` (anti-entropy on join). */
  async syncFrom(peer: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    const res = await request(this.#node, peer, TOPOLOGIES_PROTOCOL, { op: "list" }, {
      schema: TopologiesResponseSchema,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let n = 0;
    for (const r of res.records) if (this.merge(r)) n++;
    return n;
  }

  /** A short hash of every record's (ID, epoch, version, time, state): equal digests, same records. */
  digest(): string {
    if (this.#digest === undefined) {
      const h = createHash("sha256");
      for (const r of [...this.#records.values()].sort((a, b) => a.id < b.id ? -1 : 1)) {
        h.update(`${r.id}\0${r.epoch}\0${r.version}\0${r.updatedAt}\0${r.commander}\0${r.state}\n`);
      }
      this.#digest = h.digest("hex").slice(0, 32);
    }
    return this.#digest;
  }

  /** One record. */
  get(id: string): TopologyRecord | undefined {
    return this.#records.get(id);
  }

  /** Every record, stopped ones included. */
  records(): TopologyRecord[] {
    return [...this.#records.values()];
  }

  stop(): void {
    this.#off?.();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.stop();
    return Promise.resolve();
  }
}

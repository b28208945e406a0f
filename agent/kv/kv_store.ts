/**
 * The key-value replica of an agent: every topology's properties, one current value per writing task,
 * versioned by hybrid logical clock (the later version of a writer wins; a delete is a tombstone).
 *
 * DDS only forwards each update as (key, value, sender); keeping them lets a task that starts late read
 * what was written before it, and lets replicas converge after a partition.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type * as v from "valibot";
import { EventHub } from "../../mesh/mod.ts";
import type { KvEntrySchema } from "./kv_replication.ts";

/** Largest value accepted, in bytes of UTF-8. */
export const MAX_VALUE_BYTES = 64 * 1024;

/** One writer's value of one property. */
export type KvEntry = v.InferOutput<typeof KvEntrySchema>;

/** A value as readers see it. */
export interface KvValue {
  value: string;
  sender: string;
  path: string;
  version: string;
  scope?: string;
  deleted?: boolean;
}

/** `{key, values}`: what `get` and `watch` return. */
export interface KvResult {
  key: string;
  values: KvValue[];
}

/** The reader's view of one entry. */
export function toValue(e: KvEntry, options: { withScope?: boolean } = {}): KvValue {
  return {
    value: e.value,
    sender: e.sender,
    path: e.path,
    version: e.version,
    ...(options.withScope && e.scope ? { scope: e.scope } : {}),
    ...(e.deleted ? { deleted: true } : {}),
  };
}

/** True when `a` supersedes `b` (same writer, same key). */
export function newerEntry(a: KvEntry, b: KvEntry): boolean {
  if (a.version !== b.version) return a.version > b.version;
  if (a.deleted !== b.deleted) return a.deleted;
  return a.value > b.value;
}

const slotKey = (topologyId: string, key: string, scope: string) => `${topologyId}\0${key}\0${scope}`;

interface Slot {
  writers: Map<string, KvEntry>;
  live: number;
}

/** The replica. */
export class KvStore {
  /** Every entry that changed the store, as it changed it. */
  readonly changes: EventHub<KvEntry> = new EventHub();
  readonly #slots = new Map<string, Slot>();
  /** Topology ID → version up to which its entries were dropped (see `dropTopology`). */
  readonly #floors = new Map<string, string>();
  #size = 0;
  #digest: string | undefined;

  /** Number of entries, tombstones included. */
  get size(): number {
    return this.#size;
  }

  /** Stores `entry` when it is newer than what this writer had; returns true when it changed the store. */
  merge(entry: KvEntry): boolean {
    const floor = this.#floors.get(entry.topologyId);
    if (floor !== undefined && entry.version <= floor) return false;
    const k = slotKey(entry.topologyId, entry.key, entry.scope);
    let slot = this.#slots.get(k);
    if (!slot) {
      slot = { writers: new Map(), live: 0 };
      this.#slots.set(k, slot);
    }
    const have = slot.writers.get(entry.sender);
    if (have && !newerEntry(entry, have)) return false;
    if (!have) this.#size++;
    slot.live += (entry.deleted ? 0 : 1) - (have && !have.deleted ? 1 : 0);
    slot.writers.set(entry.sender, entry);
    this.#digest = undefined;
    this.changes.emit(entry);
    return true;
  }

  /** Live values of one property in one scope, ordered by writer path. */
  values(topologyId: string, key: string, scope: string): KvEntry[] {
    const slot = this.#slots.get(slotKey(topologyId, key, scope));
    if (!slot) return [];
    return [...slot.writers.values()].filter((e) => !e.deleted).sort((a, b) => a.path < b.path ? -1 : 1);
  }

  /** Number of writers holding a live value of one property in one scope. */
  count(topologyId: string, key: string, scope: string): number {
    return this.#slots.get(slotKey(topologyId, key, scope))?.live ?? 0;
  }

  /** Every entry of a topology (or of all), tombstones included. */
  entries(topologyId?: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const slot of this.#slots.values()) {
      for (const e of slot.writers.values()) {
        if (topologyId === undefined || e.topologyId === topologyId) out.push(e);
      }
    }
    return out;
  }

  /** A hash of every (entry, version): two replicas with equal digests hold the same state. */
  digest(): string {
    if (this.#digest === undefined) {
      const ids = this.entries().map((e) =>
        `${slotKey(e.topologyId, e.key, e.scope)}\0${e.sender}\0${e.version}\0${e.deleted ? 1 : 0}`
      ).sort();
      const h = createHash("sha256");
      for (const id of ids) h.update(id).update("\n");
      this.#digest = h.digest("hex");
    }
    return this.#digest;
  }

  /**
   * Forgets a topology's entries up to version `floor` (its stop) and refuses them from then on, so that
   * neither late gossip nor anti-entropy brings back the values of a stopped run into the next one.
   */
  dropTopology(topologyId: string, floor: string): void {
    const had = this.#floors.get(topologyId);
    if (had === undefined || floor > had) this.#floors.set(topologyId, floor);
    for (const [k, slot] of this.#slots) {
      if (!k.startsWith(`${topologyId}\0`)) continue;
      for (const [sender, e] of slot.writers) {
        if (e.version > floor) continue;
        slot.writers.delete(sender);
        if (!e.deleted) slot.live--;
        this.#size--;
        this.#digest = undefined;
      }
      if (slot.writers.size === 0) this.#slots.delete(k);
    }
  }
}

/**
 * The replicated queue of one agent: entries gossiped on change, pulled from a peer on join, and kept
 * converged by a digest riding on membership probes (as topology and environment records are). The
 * highest (version, updatedAt) wins, so the queue survives the peer that queued and any one scheduler.
 *
 * @module
 */
import { type MeshNode, Replicated } from "../mesh/mod.ts";
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
export class PoolRecords extends Replicated<QueueEntry> {
  constructor(node: MeshNode) {
    super(node, {
      topic: POOL_TOPIC,
      schema: QueueEntrySchema,
      digestKey: POOL_DIGEST,
      protocol: POOL_PROTOCOL,
      listSchema: PoolResponseSchema,
      listed: (res) => (res as { entries?: unknown[] }).entries ?? [],
      newer: newerEntry,
      version: (e) => `${e.version}\0${e.updatedAt}\0${e.startedBy ?? ""}`,
    });
  }

  entries(): QueueEntry[] {
    return this.values();
  }
}

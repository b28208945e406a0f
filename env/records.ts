/**
 * The replicated environment records of one agent: gossiped on change, pulled from a peer on join, and
 * kept converged by a digest riding on membership probes (as topology records are). The highest
 * (epoch, seq, updatedAt) wins.
 *
 * @module
 */
import * as v from "valibot";
import { type MeshNode, Replicated } from "../mesh/mod.ts";
import { ENV_PROTOCOL, ENV_TOPIC, EnvRecordSchema, EnvResponseSchema } from "./protocols.ts";
import type { EnvRecord } from "./types.ts";
import type { EventOf } from "../agent/wire/mod.ts";

/** Key of the environments' digest among the membership digests. */
export const ENV_DIGEST = "envs";

/** True when `a` supersedes `b`. */
export function newerEnv(a: EnvRecord, b: EnvRecord): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.seq !== b.seq) return a.seq > b.seq;
  return a.updatedAt > b.updatedAt;
}

/** Replicated environment records. */
export class EnvRecords extends Replicated<EnvRecord> {
  constructor(node: MeshNode) {
    super(node, {
      topic: ENV_TOPIC,
      schema: EnvRecordSchema,
      digestKey: ENV_DIGEST,
      protocol: ENV_PROTOCOL,
      listSchema: EnvResponseSchema,
      listed: (res) => (res as { records?: unknown[] }).records ?? [],
      newer: newerEnv,
      version: (r) => `${r.epoch}\0${r.seq}\0${r.updatedAt}`,
    });
  }

  /** The live (not destroyed) environment running topology `topologyId`. */
  byTopology(topologyId: string): EnvRecord | undefined {
    for (const r of this.values()) if (r.topologyId === topologyId && !r.destroyed) return r;
    return undefined;
  }

  records(): EnvRecord[] {
    return this.values();
  }
}

/** Checks a record read from anywhere. */
export function parseEnvRecord(x: unknown): EnvRecord {
  return v.parse(EnvRecordSchema, x);
}

/**
 * `cur` with an `env:claimed` event applied — the arbiter granted a take: a new epoch, the controller and
 * its deadline, perhaps a run number — when `cur` is the very version it was granted on (the epoch before,
 * same seq and time); undefined otherwise, left to the digest rounds, which pull the arbiter's record (the
 * digest compares versions, not contents, so a claim applied to another version would never be repaired).
 */
export function applyClaim(cur: EnvRecord, e: EventOf<"env:claimed">): EnvRecord | undefined {
  const { envId, base, epoch, seq, controller, runNumber, updatedAt } = e;
  if (envId !== cur.id || cur.epoch !== epoch - 1) return undefined;
  if (cur.seq !== base.seq || cur.updatedAt !== base.updatedAt) return undefined;
  return { ...cur, epoch, seq, controller, runNumber, updatedAt };
}

/**
 * An agent's slots: the agent is the only authority over them. Leases are granted or refused atomically
 * (all of a request or nothing), tagged with the topology and its commander epoch; stale epochs are refused.
 *
 * @module
 */

/** Why a lease was refused. */
export type LeaseRefusal =
  | { reason: "full"; free: number; wanted: number }
  | { reason: "stale-epoch"; epoch: number; current: number }
  | { reason: "duplicate"; path: string }
  | { reason: "unhealthy"; why: string };

/** Result of {@linkcode SlotTable.grant}. */
export type LeaseResult = { ok: true; slots: Map<string, string> } | ({ ok: false } & LeaseRefusal);

/** The slots of one agent. */
export class SlotTable {
  readonly total: number;
  /** topologyId → task path → slot ID and the epoch it was leased under. */
  readonly #leases = new Map<string, Map<string, { slot: string; epoch: number }>>();
  readonly #epochs = new Map<string, number>();
  /** Every path ever leased here per topology (this process): a restart is told from a stop by it. */
  readonly #ever = new Map<string, Set<string>>();
  readonly #freeIds: string[];
  /** Leases granted and refused (by reason) since start, read by the metrics on a scrape. */
  readonly leaseCounts = { granted: 0, refused: { full: 0, "stale-epoch": 0, duplicate: 0, unhealthy: 0 } };
  /** Why no lease is granted now (the agent's health: `pool/health.ts`); undefined: leases are granted. */
  refusing: string | undefined;

  constructor(total: number) {
    this.total = total;
    this.#freeIds = Array.from({ length: total }, (_, i) => String(total - 1 - i));
  }

  /** Slots a commander may lease now: none while refusing. */
  get offered(): number {
    return this.refusing === undefined ? this.free : 0;
  }

  /** Slots not leased. */
  get free(): number {
    return this.#freeIds.length;
  }

  /** The highest epoch seen for a topology (0 when none). */
  epoch(topologyId: string): number {
    return this.#epochs.get(topologyId) ?? 0;
  }

  /** Leases one slot per path, all or none. */
  grant(topologyId: string, epoch: number, paths: readonly string[]): LeaseResult {
    const result = this.#grant(topologyId, epoch, paths);
    if (result.ok) this.leaseCounts.granted++;
    else this.leaseCounts.refused[result.reason]++;
    return result;
  }

  #grant(topologyId: string, epoch: number, paths: readonly string[]): LeaseResult {
    if (this.refusing !== undefined && paths.length > 0) {
      return { ok: false, reason: "unhealthy", why: this.refusing };
    }
    const current = this.epoch(topologyId);
    if (epoch < current) return { ok: false, reason: "stale-epoch", epoch, current };
    const held = this.#leases.get(topologyId);
    const dup = paths.find((p, i) => held?.has(p) || paths.indexOf(p) !== i);
    if (dup !== undefined) return { ok: false, reason: "duplicate", path: dup };
    if (paths.length > this.free) return { ok: false, reason: "full", free: this.free, wanted: paths.length };
    // An empty lease holds nothing, so it fences nothing either.
    if (paths.length > 0) this.#epochs.set(topologyId, epoch);
    const map = held ?? new Map<string, { slot: string; epoch: number }>();
    this.#leases.set(topologyId, map);
    const slots = new Map<string, string>();
    const ever = this.#ever.get(topologyId) ?? new Set<string>();
    this.#ever.set(topologyId, ever);
    for (const p of paths) {
      ever.add(p);
      const slot = this.#freeIds.pop()!;
      map.set(p, { slot, epoch });
      slots.set(p, slot);
    }
    return { ok: true, slots };
  }

  /** Frees the slots of `paths` (all of the topology when absent); returns how many were freed. */
  release(topologyId: string, paths?: readonly string[]): number {
    const held = this.#leases.get(topologyId);
    if (!held) return 0;
    let n = 0;
    for (const p of paths ?? [...held.keys()]) {
      const lease = held.get(p);
      if (lease === undefined) continue;
      held.delete(p);
      this.#freeIds.push(lease.slot);
      n++;
    }
    if (held.size === 0) this.#leases.delete(topologyId);
    return n;
  }

  /** Paths leased for a topology. */
  leased(topologyId: string): string[] {
    return [...(this.#leases.get(topologyId)?.keys() ?? [])];
  }

  /** The epoch `path` of a topology was leased under (undefined when it holds no slot here). */
  leaseEpoch(topologyId: string, path: string): number | undefined {
    return this.#leases.get(topologyId)?.get(path)?.epoch;
  }

  /** Whether `path` of a topology was ever leased by this process (held now, or since freed). */
  wasLeased(topologyId: string, path: string): boolean {
    return this.#ever.get(topologyId)?.has(path) ?? false;
  }

  /** Topologies with at least one lease. */
  topologies(): string[] {
    return [...this.#leases.keys()];
  }
}

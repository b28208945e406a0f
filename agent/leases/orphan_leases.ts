/**
 * All or nothing, even when the commander dies. A commander leases slots and starts tasks first, and
 * publishes the topology's record (its desired state) only once every task runs; if it dies in between —
 * a `shoal topology activate` killed half-way, a machine gone — the tasks it did start belong to no
 * topology. An agent keeps each lease it granted under watch until the topology's record lists those tasks
 * on it; when the commander has been gone (not connected to this agent) for `graceMs` and the record still
 * does not list them, the agent stops them and frees their slots, as the commander itself would have done.
 * A record whose gossip this agent missed arrives within a few membership probes (`desired_sync.ts`), well inside
 * the grace period.
 *
 * @module
 */
import type { MeshNode } from "../../mesh/mod.ts";
import type { DesiredState } from "../desired/mod.ts";
import type { Logger } from "../log.ts";

/** What {@linkcode OrphanLeases} needs. */
export interface OrphanLeasesInit {
  /** This agent's ID and who is connected to it. */
  node: Pick<MeshNode, "peerId" | "connectedPeers">;
  /** The records that confirm leases. */
  desired: Pick<DesiredState, "get">;
  log: Pick<Logger, "warn" | "error">;
  /** Stops tasks of this agent and frees their slots. */
  stop: (topologyId: string, paths: string[]) => Promise<void>;
  /** Tells others (event gossip) that tasks were abandoned. */
  report?: (e: { topologyId: string; commander: string; paths: string[] }) => void;
  /** Whether a task still holds its slot here (stopped ones are no longer watched). */
  held?: (topologyId: string, path: string) => boolean;
  /** How long a commander may be gone before its unconfirmed tasks are stopped (default 15 s). */
  graceMs?: number;
  /** The time and the checking timer (default the real ones; unit tests pass a fake clock). */
  clock?: OrphanClock;
}

/** What {@linkcode OrphanLeases} needs of a clock. */
export interface OrphanClock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const REAL_CLOCK: OrphanClock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

interface Watched {
  topologyId: string;
  epoch: number;
  commander: string;
  paths: Set<string>;
  /** Since when the commander is not connected (undefined while it is). */
  goneSince?: number;
}

/** The leases of one agent whose topology record has not confirmed them yet. */
export class OrphanLeases implements Disposable {
  readonly #init: OrphanLeasesInit;
  readonly #watched: Watched[] = [];
  /** Runs only while something is watched: an idle agent has no timer here. */
  #timer: unknown;
  readonly #clock: OrphanClock;

  constructor(init: OrphanLeasesInit) {
    this.#init = init;
    this.#clock = init.clock ?? REAL_CLOCK;
  }

  /** Watches tasks just leased to `commander` (a commander on this agent itself needs no watch). */
  leased(topologyId: string, epoch: number, commander: string, paths: readonly string[]): void {
    if (commander === this.#init.node.peerId || paths.length === 0) return;
    this.#watched.push({ topologyId, epoch, commander, paths: new Set(paths) });
    this.#timer ??= this.#clock.setInterval(() => this.check(), 1_000);
  }

  /** Drops confirmed tasks and stops those whose commander is gone for too long. */
  check(now = this.#clock.now()): void {
    const me = this.#init.node.peerId;
    const connected = new Set(this.#init.node.connectedPeers());
    const grace = this.#init.graceMs ?? 15_000;
    for (let i = this.#watched.length - 1; i >= 0; i--) {
      const w = this.#watched[i]!;
      const record = this.#init.desired.get(w.topologyId);
      if (record && record.epoch >= w.epoch) {
        // Stopped or superseded: whoever did that owns these tasks now.
        if (record.state !== "active" || record.epoch > w.epoch) {
          this.#watched.splice(i, 1);
          continue;
        }
        for (const p of record.placement[me] ?? []) w.paths.delete(p);
      }
      // Already stopped (a refused activation stopped what it started): nothing left to abandon.
      if (this.#init.held) {
        for (const p of w.paths) if (!this.#init.held(w.topologyId, p)) w.paths.delete(p);
      }
      if (w.paths.size === 0) {
        this.#watched.splice(i, 1);
        continue;
      }
      if (connected.has(w.commander)) {
        w.goneSince = undefined;
        continue;
      }
      w.goneSince ??= now;
      if (now - w.goneSince < grace) continue;
      this.#watched.splice(i, 1);
      const paths = [...w.paths];
      this.#init.log.warn(
        "commander left before its topology was recorded; stopping its tasks (all or nothing)",
        {
          topology: w.topologyId,
          commander: w.commander,
          tasks: paths.length,
        },
      );
      this.#init.report?.({ topologyId: w.topologyId, commander: w.commander, paths });
      this.#init.stop(w.topologyId, paths).catch((err) =>
        this.#init.log.error("stopping abandoned tasks failed", {
          topology: w.topologyId,
          reason: (err as Error).message,
        })
      );
    }
    if (this.#watched.length === 0) this.close();
  }

  /** Stops watching. */
  close(): void {
    if (this.#timer !== undefined) this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

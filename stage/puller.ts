/**
 * Pulling a manifest into this peer: a bounded number of chunk requests in flight, pieces chosen by
 * `schedule.ts`, every chunk verified before it is written, peers' have-maps asked on demand from a
 * bounded random few at a time (so the cost per interval does not grow with the mesh), failed peers backed
 * off, corrupt chunks fetched elsewhere.
 *
 * @module
 */
import { type MeshNode, request } from "../mesh/mod.ts";
import { Bitmap } from "./bitmap.ts";
import { ChunkCorruptError, NoHolderError } from "./errors.ts";
import type { Holding } from "./holding.ts";
import { type PeerState, pickNext } from "./schedule.ts";
import { CHUNK_PROTOCOL, ChunkResponseSchema, HAVE_PROTOCOL, HaveResponseSchema } from "./types.ts";

/** What {@linkcode pull} needs. */
export interface PullInit {
  node: MeshNode;
  holding: Holding;
  /** Other peers that pull or hold the manifest. */
  peers: readonly string[];
  /** Peers that hold everything (asked only for what no other peer has). */
  seeds: readonly string[];
  /** Chunk requests in flight (default 4). */
  parallel?: number;
  /** Of those, at most this many to seeds while other peers pull too (default 2). */
  seedParallel?: number;
  /** How often have-maps are asked while pulling (default 400 ms). */
  refreshMs?: number;
  /** Peers asked per refresh (default 4). */
  askPeers?: number;
  /** Give up after this long without a new chunk (default 30 s). */
  stallMs?: number;
  /** Back off a peer that failed for this long (default 2 s). */
  backoffMs?: number;
  signal?: AbortSignal;
  /** Called after each chunk written. */
  onChunk?: () => void;
  /** Called for each corrupt chunk and each failed request. */
  onIssue?: (what: "corrupt" | "failed", peer: string, detail: string) => void;
  /**
   * Given, once, the function that adds sources to this pull while it runs: a new `stage put` of the same
   * manifest (after an interrupted one) brings a live seed to a pull whose seed went away.
   */
  onSources?: (add: (sources: { peers: readonly string[]; seeds: readonly string[] }) => void) => void;
  random?: () => number;
}

/** What a pull fetched. */
export interface PullStats {
  fetched: number;
  from: Record<string, number>;
  corrupt: number;
}

/** Pulls every missing piece of `init.holding`; resolves when it is complete. */
export async function pull(init: PullInit): Promise<PullStats> {
  const { node, holding } = init;
  const parallel = init.parallel ?? 4;
  const refreshMs = init.refreshMs ?? 400;
  const askPeers = init.askPeers ?? 4;
  const stallMs = init.stallMs ?? 30_000;
  const backoffMs = init.backoffMs ?? 2_000;
  const random = init.random ?? Math.random;
  const signal = init.signal ?? new AbortController().signal;
  const self = node.peerId;
  const seedSet = new Set(init.seeds.filter((s) => s !== self));
  const peers: PeerState[] = [
    ...[...seedSet].map((id) => ({ id, seed: true, inflight: 0, backoffUntil: 0 })),
    ...[...new Set(init.peers)].filter((id) => id !== self && !seedSet.has(id))
      .map((id) => ({ id, seed: false, inflight: 0, backoffUntil: 0 })),
  ];
  const others = peers.filter((p) => !p.seed);
  const pullers = [...new Set(init.peers)].sort();
  const stripe = pullers.includes(self) ? { index: pullers.indexOf(self), of: pullers.length } : undefined;
  const seedParallel = () => others.length ? (init.seedParallel ?? 2) : parallel;
  const stats: PullStats = { fetched: 0, from: {}, corrupt: 0 };
  const inflight = new Set<number>();
  const bad = new Set<string>();
  const running = new Set<Promise<void>>();
  let seedInflight = 0;
  let lastProgress = Date.now();
  let lastRefresh = 0;
  let refreshing: Promise<void> | undefined;
  let have = holding.bitmap();
  init.onSources?.(({ peers: more, seeds }) => {
    const known = new Map(peers.map((p) => [p.id, p]));
    for (const id of new Set([...seeds, ...more])) {
      if (id === self) continue;
      const seed = seeds.includes(id);
      const p = known.get(id);
      if (p) {
        p.backoffUntil = 0; // back again (a new put): ask it now
        continue;
      }
      const added: PeerState = { id, seed, inflight: 0, backoffUntil: 0 };
      peers.push(added);
      if (!seed) others.push(added);
    }
    // The stall clock restarts: there is someone to ask again.
    lastProgress = Date.now();
  });

  const refresh = async () => {
    const now = Date.now();
    const candidates = others.filter((p) => p.backoffUntil <= now && !p.bits?.full);
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
    }
    await Promise.all(
      candidates.slice(0, askPeers).map(async (p) => {
        try {
          const res = await request(node, p.id, HAVE_PROTOCOL, { manifest: holding.id }, {
            schema: HaveResponseSchema,
            timeoutMs: 3_000,
            signal,
          });
          p.bits = res.all ? Bitmap.full(holding.table.size) : new Bitmap(holding.table.size, res.bits);
        } catch (err) {
          p.backoffUntil = Date.now() + backoffMs;
          init.onIssue?.("failed", p.id, (err as Error).message);
        }
      }),
    );
  };
  const startRefresh = () => {
    refreshing ??= refresh().finally(() => {
      refreshing = undefined;
      lastRefresh = Date.now();
    });
  };

  const fetch = async (piece: number, peer: PeerState) => {
    inflight.add(piece);
    peer.inflight++;
    if (peer.seed) seedInflight++;
    try {
      const res = await request(node, peer.id, CHUNK_PROTOCOL, { manifest: holding.id, piece }, {
        schema: ChunkResponseSchema,
        timeoutMs: 30_000,
        maxBytes: holding.table.manifest.chunkSize + 4096,
        signal,
      });
      await holding.write(piece, res.data, peer.id);
      have.set(piece);
      stats.fetched += res.data.byteLength;
      stats.from[peer.id] = (stats.from[peer.id] ?? 0) + res.data.byteLength;
      lastProgress = Date.now();
      init.onChunk?.();
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ChunkCorruptError) {
        stats.corrupt++;
        bad.add(`${peer.id}\0${piece}`);
        init.onIssue?.("corrupt", peer.id, err.message);
      } else if ((err as Error).name === "RangeError") {
        // It does not hold that piece (any more): not from it again.
        bad.add(`${peer.id}\0${piece}`);
      } else {
        peer.backoffUntil = Date.now() + backoffMs;
        init.onIssue?.("failed", peer.id, (err as Error).message);
      }
    } finally {
      inflight.delete(piece);
      peer.inflight--;
      if (peer.seed) seedInflight--;
    }
  };

  try {
    if (others.length) startRefresh();
    await refreshing;
    while (!have.full) {
      signal.throwIfAborted();
      if (others.length && Date.now() - lastRefresh >= refreshMs) startRefresh();
      while (running.size < parallel) {
        const next = pickNext({
          have,
          inflight,
          peers,
          bad,
          allowSeed: seedInflight < seedParallel(),
          now: Date.now(),
          random,
          ...(stripe ? { stripe } : {}),
        });
        if (!next) break;
        const p = fetch(next.piece, next.peer).finally(() => running.delete(p));
        running.add(p);
      }
      if (running.size === 0 && Date.now() - lastProgress > stallMs) {
        throw new NoHolderError(holding.table.manifest.name, have.size - have.count, stallMs);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<void>((r) => (timer = setTimeout(r, refreshMs)));
      await Promise.race([...running, tick, ...(refreshing ? [refreshing] : [])]);
      clearTimeout(timer);
      have = holding.bitmap();
    }
    await Promise.allSettled(running);
    for (const f of holding.files) await f.ensureComplete();
    return stats;
  } finally {
    await Promise.allSettled(running);
  }
}

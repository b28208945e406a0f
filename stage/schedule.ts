/**
 * Which piece to fetch next, and from whom: pieces held by other pullers go rarest-first (random among the
 * rarest) to the least-busy holder; seeds (the `stage put` process, which holds everything) are asked only
 * for pieces no other peer holds yet, each puller first for its own stripe of them (piece mod pullers), so
 * each piece leaves a seed about once and the swarm spreads it.
 *
 * @module
 */
import type { Bitmap } from "./bitmap.ts";

/** A peer as a puller sees it. */
export interface PeerState {
  id: string;
  /** Holds every piece; asked only for pieces no other peer has. */
  seed: boolean;
  /** Its pieces as last asked (a seed has none: all). */
  bits?: Bitmap;
  /** Requests of ours in flight to it. */
  inflight: number;
  /** Not asked before this time (it failed). */
  backoffUntil: number;
}

/** What {@linkcode pickNext} decides from. */
export interface PickInput {
  have: Bitmap;
  inflight: ReadonlySet<number>;
  peers: readonly PeerState[];
  /** `peer\0piece` pairs that sent a corrupt chunk. */
  bad: ReadonlySet<string>;
  /** A seed may be asked (its share of the parallel requests is not used up). */
  allowSeed: boolean;
  now: number;
  random: () => number;
  /** This puller's share of seed-only pieces: those with `piece % of === index` go first. */
  stripe?: { index: number; of: number };
}

/** The next piece and peer, or undefined when nothing can be asked now. */
export function pickNext(input: PickInput): { piece: number; peer: PeerState } | undefined {
  const { have, inflight, bad, now, random } = input;
  const usable = input.peers.filter((p) => p.backoffUntil <= now);
  const others = usable.filter((p) => !p.seed);
  const seeds = input.allowSeed ? usable.filter((p) => p.seed) : [];
  let rarest = Infinity;
  let rare: number[] = [];
  const seedOnly: number[] = [];
  for (let piece = 0; piece < have.size; piece++) {
    if (have.has(piece) || inflight.has(piece)) continue;
    let holders = 0;
    for (const p of others) if (p.bits?.has(piece) && !bad.has(`${p.id}\0${piece}`)) holders++;
    if (holders === 0) {
      if (seeds.some((s) => !bad.has(`${s.id}\0${piece}`))) seedOnly.push(piece);
      continue;
    }
    if (holders < rarest) {
      rarest = holders;
      rare = [piece];
    } else if (holders === rarest) rare.push(piece);
  }
  if (seeds.length && seedOnly.length) {
    const stripe = input.stripe;
    const mine = stripe ? seedOnly.filter((p) => p % stripe.of === stripe.index) : [];
    const from = mine.length ? mine : seedOnly;
    const piece = from[Math.floor(random() * from.length)]!;
    return { piece, peer: leastBusy(seeds.filter((s) => !bad.has(`${s.id}\0${piece}`)), random) };
  }
  if (rare.length === 0) return undefined;
  const piece = rare[Math.floor(random() * rare.length)]!;
  const holders = others.filter((p) => p.bits?.has(piece) && !bad.has(`${p.id}\0${piece}`));
  return { piece, peer: leastBusy(holders, random) };
}

function leastBusy(peers: PeerState[], random: () => number): PeerState {
  const min = Math.min(...peers.map((p) => p.inflight));
  const idle = peers.filter((p) => p.inflight === min);
  return idle[Math.floor(random() * idle.length)]!;
}

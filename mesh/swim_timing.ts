/**
 * Every timing and size of the membership protocol, in one place. The shape follows hashicorp/memberlist's
 * LAN defaults (`config.go`): probe one peer a second, indirect probes through 3 others, gossip every 200 ms
 * to 3 peers, retransmits and suspicion scaled by log N, a full push-pull with one random member. What
 * differs is said where it is set.
 *
 * @module
 */

/** Timing and sizes of the membership protocol. */
export interface SwimTiming {
  /**
   * A probe of one linked peer per interval (memberlist: 1 s on a LAN, 5 s on a WAN; shoal: 2 s — a probe
   * and its ack cost about 1 ms of CPU each through libp2p in Bun, the largest part of an idle agent's cost,
   * and a killed agent is noticed by its links at once, when its connections drop, not by probes).
   */
  probeIntervalMs: number;
  /** Wait this long for a direct ack before asking others (memberlist: 500 ms; shoal: 1 s, half its probe interval: many agents share a loaded machine). */
  probeTimeoutMs: number;
  /** Peers asked to probe indirectly when a direct probe fails (memberlist: 3). */
  indirectChecks: number;
  /**
   * Queued updates are gossiped this often (memberlist: 200 ms; shoal: 500 ms — each message costs about
   * 1 ms of CPU through libp2p, and while 100 agents join the queue is never empty); nothing is sent while
   * none are queued.
   */
  gossipIntervalMs: number;
  /** A death, a leave or a refutation is gossiped this soon after it is learnt, not at the next round. */
  urgentGossipMs: number;
  /** Peers each gossip round goes to (memberlist: 3). */
  gossipFanout: number;
  /**
   * Each update is sent `retransmitMult × ceil(log10(N + 1))` times (memberlist: 4; shoal gossips along its
   * links only, and makes up for it with push-pulls right after joining).
   */
  retransmitMult: number;
  /**
   * Suspicion lasts at least `suspicionMult × max(1, log10 N) × suspicionBaseMs` (memberlist: 4 × its probe
   * interval, 1 s). shoal tells two kinds of evidence apart: when a member's connection was refused (the
   * process is gone, its port closed: a SIGKILLed agent's links all find that at once) the suspecter waits
   * `refusedMult` instead of `suspicionMult`, so that a killed agent is everywhere dead within 5 s at N = 100;
   * a probe that only timed out may be a starved process on a loaded machine, and waits twice as long.
   */
  suspicionMult: number;
  refusedMult: number;
  suspicionBaseMs: number;
  /** With no confirmations suspicion lasts `suspicionMaxMult` times the minimum (Lifeguard; memberlist: 6). */
  suspicionMaxMult: number;
  /**
   * Full state exchange with one random link (memberlist: with a random member, every 30 s, longer above 32
   * members; links are random peers, and a link costs no new connection).
   */
  pushPullIntervalMs: number;
  /**
   * After starting, push-pulls also run at these delays, so that a new member learns of the members that
   * joined while it did (memberlist relies on its 30 s round for that).
   */
  joinPushPullsMs: readonly number[];
  /**
   * A random dead member is pinged this often, and a full push-pull follows when it answers, so that
   * partitions heal (Serf's reconnect: 30 s; shoal: 3 s).
   */
  reconnectIntervalMs: number;
  /** Dead and left members are forgotten (and no longer retried) after this long. */
  forgetAfterMs: number;
  /**
   * While random probes are on (after a death, see below), one probe in this many goes to a random member
   * rather than a link, so that a member none of this side links to is still found dead behind a partition
   * (memberlist probes every member in turn; it has UDP). A probe to an unlinked member costs a new
   * connection, about 17 ms of CPU on each side here, so it is rare: with 8, one every 16 s. (30 was tried: with
   * 4–10 links, a 3|3 cut in network namespaces then left an unlinked member undetected for over a minute.)
   */
  randomProbeEvery: number;
  /**
   * Random members are probed only this long after this member learnt of a death: a probe to an unlinked
   * member costs a connection, and one every 16 s was 40 % of an idle agent's CPU at N = 50 (11.1 → 6.7 ms/s
   * without). A partition shows itself on each side as the deaths of the members linked across it.
   */
  randomProbesAfterDeathMs: number;
  /** Keep at least this many links to other agents (dial more below). */
  linksLow: number;
  /** Keep at most this many links (close the excess, oldest first). */
  linksHigh: number;
  /** Updates per gossip message, and piggybacked on a probe. */
  maxGossipItems: number;
  maxPiggyback: number;
  /** A member this young does not suspect others on timed-out probes (it is busy joining). */
  joinGraceMs: number;
  /** A member suspects at most this many others at once on timed-out probes (refused ones always count). */
  maxOwnSuspicions: number;
  /** Lifeguard's local health: probe interval and timeout scale by up to (1 + this). */
  awarenessMax: number;
}

/** shoal's defaults. */
export const DEFAULT_TIMING: Readonly<SwimTiming> = Object.freeze({
  probeIntervalMs: 2_000,
  probeTimeoutMs: 1_000,
  indirectChecks: 3,
  gossipIntervalMs: 500,
  urgentGossipMs: 10,
  gossipFanout: 3,
  retransmitMult: 4,
  suspicionMult: 2,
  refusedMult: 1,
  suspicionBaseMs: 1_000,
  suspicionMaxMult: 4,
  pushPullIntervalMs: 30_000,
  joinPushPullsMs: [1_000, 5_000],
  reconnectIntervalMs: 3_000,
  forgetAfterMs: 30 * 60_000,
  randomProbeEvery: 8,
  randomProbesAfterDeathMs: 120_000,
  linksLow: 6,
  linksHigh: 16,
  maxGossipItems: 256,
  maxPiggyback: 8,
  awarenessMax: 8,
  joinGraceMs: 10_000,
  maxOwnSuspicions: 2,
});

/** Defaults with `overrides` applied. */
export function swimTiming(overrides: Partial<SwimTiming> = {}): SwimTiming {
  return { ...DEFAULT_TIMING, ...overrides };
}

/** How many times one update is gossiped in a mesh of `n` members. */
export function retransmitLimit(t: SwimTiming, n: number): number {
  return t.retransmitMult * Math.max(1, Math.ceil(Math.log10(n + 1)));
}

/** Shortest and longest suspicion in a mesh of `n` members (Lifeguard). */
export function suspicionBounds(t: SwimTiming, n: number, refused = false): { minMs: number; maxMs: number } {
  const mult = refused ? t.refusedMult : t.suspicionMult;
  const minMs = mult * Math.max(1, Math.log10(Math.max(1, n))) * t.suspicionBaseMs;
  return { minMs, maxMs: minMs * t.suspicionMaxMult };
}

/**
 * Suspicion timeout after `confirmations` independent suspicions out of `expected` (Lifeguard, as memberlist's
 * `suspicion.go`): from the longest down to the shortest on a log scale.
 */
export function suspicionTimeout(
  t: SwimTiming,
  n: number,
  confirmations: number,
  expected: number,
  refused = false,
): number {
  const { minMs, maxMs } = suspicionBounds(t, n, refused);
  if (expected < 1) return minMs;
  const frac = Math.log(confirmations + 1) / Math.log(expected + 1);
  return Math.max(minMs, Math.floor(maxMs - (maxMs - minMs) * Math.min(1, frac)));
}

/** Push-pull period: memberlist's scaling above 32 members, so the cost per member stays flat. */
export function pushPullInterval(t: SwimTiming, n: number): number {
  if (n <= 32) return t.pushPullIntervalMs;
  return t.pushPullIntervalMs * (Math.ceil(Math.log2(n) - Math.log2(32)) + 1);
}

/**
 * The membership protocol, independent of any transport or clock, so that the very same code runs in an
 * agent (over libp2p streams, `membership.ts`) and in the simulator (`sim.ts`, virtual time).
 *
 * It is SWIM with Lifeguard, shaped after hashicorp/memberlist, over a bounded overlay: each member keeps
 * between `linksLow` and `linksHigh` links (connections) to random others, and every periodic action costs
 * O(1) per member whatever N is:
 * - each probe interval it pings the next of its linked peers (round-robin over a shuffled list); without an
 *   ack within the probe timeout it asks `indirectChecks` other linked peers to ping it; with no ack at all
 *   it suspects it. A link that drops without notice is probed at once.
 * - updates (join, suspect, dead, left, refutation, a change of the member's slots) queue for gossip: every
 *   gossip interval, while any are queued, they go to `gossipFanout` random links, each retransmitted
 *   ~log N times, and they ride on pings and acks;
 * - suspicion lasts from `maxMs` down to `minMs` as independent confirmations arrive (Lifeguard); the
 *   suspected member refutes with a higher incarnation; otherwise it is declared dead;
 * - a push-pull of whole views with one random member repairs what gossip missed; a random dead member is
 *   retried every reconnect interval, so that the two sides of a healed partition meet again.
 *
 * @module
 */
import { BroadcastQueue } from "./broadcast_queue.ts";
import { MemberTable } from "./member_table.ts";
import type { MemberMeta, MemberUpdate, SwimMessage } from "./swim_types.ts";
import {
  pushPullInterval,
  retransmitLimit,
  suspicionTimeout,
  type SwimTiming,
  swimTiming,
} from "./swim_timing.ts";
import type { MembershipEvent } from "./types.ts";

/** Timers, injected so that tests and the simulator run on virtual time. */
export interface SwimClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const REAL_CLOCK: SwimClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** What the protocol needs from the network. */
export interface SwimTransport {
  /** Sends `msg` to `to`, connecting first if needed; a failure is reported with `sendFailed`. */
  send(to: string, msg: SwimMessage): void;
  /** Opens a link to `to`; reported with `linkUp` (or `sendFailed`). */
  connect(to: string): void;
  /** Closes the link to `to` (after an `unlink` message has been sent). */
  disconnect(to: string): void;
}

/** Options for {@linkcode Swim}. */
export interface SwimInit {
  id: string;
  addrs: string[];
  meta: MemberMeta;
  transport: SwimTransport;
  clock?: SwimClock;
  random?: () => number;
  timing?: Partial<SwimTiming>;
  /** Starting incarnation (default: the clock's now, so a restarted member outranks its earlier life). */
  incarnation?: number;
  /** Digests of replicated state, carried on every probe and ack. */
  digests?: () => Record<string, string> | undefined;
  onEvent?: (e: MembershipEvent) => void;
  /** A peer's digests, as received on a probe or ack. */
  onDigests?: (from: string, digests: Record<string, string>) => void;
}

interface Probe {
  target: string;
  timer: unknown;
  indirect: number;
  nacks: number;
  done: boolean;
  /** When the ping went out: its ack's round trip tunes the timeout. */
  sentAt: number;
  /** The ping could not even be sent (connection refused): evidence of its own. */
  sendFailed?: boolean;
}

/** Counters of what one member sent, for benches and the simulator. */
export interface SwimCounters {
  sent: number;
  received: number;
}

/** One member's membership protocol. */
export class Swim {
  readonly table: MemberTable;
  readonly counters: SwimCounters = { sent: 0, received: 0 };
  readonly #init: SwimInit;
  readonly #t: SwimTiming;
  readonly #clock: SwimClock;
  readonly #random: () => number;
  readonly #queue = new BroadcastQueue();
  /** Linked peers (connected members), with when the link came up. */
  readonly #links = new Map<string, number>();
  /** Peers that said they close their link on purpose. */
  readonly #unlinked = new Set<string>();
  #probeOrder: string[] = [];
  #seq = 0;
  readonly #probes = new Map<number, Probe>();
  /** Indirect probes run for others: our seq → the asker and its seq. */
  readonly #relays = new Map<number, { asker: string; seq: number; timer: unknown }>();
  readonly #suspicionTimers = new Map<string, unknown>();
  /** Members whose connection this member found refused while suspecting them: strong evidence. */
  readonly #refused = new Set<string>();
  /** When a dead member that answered was last sent our view. */
  readonly #revived = new Map<string, number>();
  #awareness = 0;
  /** This member's own probe tick ran late: it cannot judge others' timeliness now. */
  #lagging = false;
  #startedAt = 0;
  /** Members this member suspects because its probes of them timed out (not refused). */
  readonly #ownSuspicions = new Set<string>();
  #srtt: number | undefined;
  #rttvar = 0;
  #ticks = 0;
  /** Random members are probed until then (see `randomProbesAfterDeathMs`). */
  #wideUntil = Number.NEGATIVE_INFINITY;
  #joinSyncAt = -Infinity;
  /** When the pending gossip round runs. */
  #gossipAt = 0;
  readonly #joinTimers: unknown[] = [];
  #timers: { probe?: unknown; gossip?: unknown; pushPull?: unknown; reconnect?: unknown } = {};
  #stopped = false;
  #meta: MemberMeta;

  constructor(init: SwimInit) {
    this.#init = init;
    this.#t = swimTiming(init.timing);
    this.#clock = init.clock ?? REAL_CLOCK;
    this.#random = init.random ?? Math.random;
    this.#meta = init.meta;
    this.table = new MemberTable(init.id);
    this.table.setSelf(init.incarnation ?? this.#clock.now(), init.addrs, init.meta, this.#clock.now());
  }

  /** This member's ID. */
  get id(): string {
    return this.#init.id;
  }

  /** The current direct-probe timeout in ms (adapts to slow acks and to this member's health). */
  get probeTimeoutMs(): number {
    return Math.round(this.#probeTimeout());
  }

  /** IDs of linked members. */
  links(): string[] {
    return [...this.#links.keys()];
  }

  /** Starts probing, push-pull and reconnecting. */
  start(): void {
    this.#startedAt = this.#clock.now();
    this.#scheduleProbe();
    for (const ms of this.#t.joinPushPullsMs) {
      this.#joinTimers.push(this.#clock.setTimeout(() => this.#syncRandom(), this.#jitter(ms)));
    }
    this.#timers.pushPull = this.#clock.setTimeout(
      () => this.#pushPull(),
      this.#jitter(pushPullInterval(this.#t, 1)),
    );
    this.#timers.reconnect = this.#clock.setTimeout(
      () => this.#reconnect(),
      this.#jitter(this.#t.reconnectIntervalMs),
    );
  }

  /**
   * Announces a change of what this member says of itself (e.g. free slots). A `lazy` change (one nobody
   * waits for, such as the load figure) only rides on messages sent anyway and on push-pulls: all agents of
   * a host see their load change at once, and a gossip round each would keep every queue busy.
   */
  update(meta: Partial<MemberMeta>, addrs?: string[], lazy = false): void {
    this.#meta = { ...this.#meta, ...meta };
    const now = this.#clock.now();
    const self = this.table.setSelf(
      this.table.selfIncarnation + 1,
      addrs ?? this.table.addrs(this.id),
      this.#meta,
      now,
    );
    this.#broadcast(self, false, lazy);
  }

  /**
   * Leaves: tells every link at once (they pass it on), then stops. The caller closes the connections
   * afterwards.
   */
  leave(): void {
    if (this.#stopped) return;
    const left: MemberUpdate = { id: this.id, inc: this.table.selfIncarnation + 1, st: "left" };
    for (const peer of this.#links.keys()) this.#send(peer, { t: "gossip", g: [left] });
    this.stop();
  }

  /** Stops every timer. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const h of Object.values(this.#timers)) if (h !== undefined) this.#clock.clearTimeout(h);
    for (const h of this.#joinTimers) this.#clock.clearTimeout(h);
    for (const p of this.#probes.values()) this.#clock.clearTimeout(p.timer);
    for (const r of this.#relays.values()) this.#clock.clearTimeout(r.timer);
    for (const h of this.#suspicionTimers.values()) this.#clock.clearTimeout(h);
  }

  /** A link to `peer` came up; `outbound` when we dialled it. */
  linkUp(peer: string, outbound: boolean): void {
    if (this.#stopped || peer === this.id) return;
    this.#unlinked.delete(peer);
    const known = this.table.state(peer);
    const now = this.#clock.now();
    // A bootstrap peer (or one we know nothing of): exchange views right away to join — with one of them
    // while this member is still alone (the reply brings the others; a view costs O(N) to send and merge).
    if (
      !known && outbound && (this.table.live.size > 0 || now - this.#joinSyncAt > this.#t.probeIntervalMs)
    ) {
      this.#joinSyncAt = now;
      this.#send(peer, { t: "sync", members: this.table.updates(), reply: true });
    }
    if (known || outbound) this.#links.set(peer, now);
  }

  /** The link to `peer` went down. One that went without notice is probed at once. */
  linkDown(peer: string): void {
    if (!this.#links.delete(peer)) return;
    if (this.#unlinked.delete(peer) || this.#stopped) {
      this.#cancelProbes(peer);
      return;
    }
    const s = this.table.state(peer);
    if (s?.state === "alive" || s?.state === "suspect") this.#probe(peer);
  }

  /**
   * A link to `peer` could not be opened (`connect` failed). A live member we cannot dial is probed (unless a
   * probe of it is under way), so that the usual evidence decides: behind a partition, a member no one on
   * this side links to would otherwise be found dead only by a rare random probe.
   */
  linkFailed(peer: string): void {
    if (this.#stopped || this.#links.has(peer)) return;
    const s = this.table.state(peer);
    if (s?.state !== "alive" && s?.state !== "suspect") return;
    for (const p of this.#probes.values()) if (p.target === peer) return;
    this.#probe(peer);
  }

  /**
   * Sending to `peer` failed. `refused`: no connection could be made because the peer refused it (its process
   * is gone) — evidence of its own; any other failure (a dial that timed out, a stream that would not open on
   * a loaded peer) is left to the probe's timeouts.
   */
  sendFailed(_peer: string, msg: SwimMessage, refused = true): void {
    if (this.#stopped || !refused) return;
    if (msg.t === "ping") {
      const probe = this.#probes.get(msg.seq);
      if (probe) {
        probe.sendFailed = true;
        this.#indirect(msg.seq, probe);
      }
      const relay = this.#relays.get(msg.seq);
      if (relay) this.#endRelay(msg.seq, false);
    }
  }

  /** Handles a message from `from`. */
  receive(from: string, msg: SwimMessage): void {
    if (this.#stopped) return;
    this.counters.received++;
    const now = this.#clock.now();
    // A message comes over a connection: a known member's is a link, even one that connected before we
    // knew it.
    if (!this.#links.has(from) && !this.#unlinked.has(from)) {
      const s = this.table.state(from);
      if (s?.state === "alive" || s?.state === "suspect") this.#links.set(from, now);
    }
    switch (msg.t) {
      case "ping":
        this.#answeredWhileDead(from, now);
        this.table.heard(from, now);
        this.#applyAll(msg.g, false, from);
        if (msg.d) this.#init.onDigests?.(from, msg.d);
        this.#send(from, { t: "ack", seq: msg.seq, g: this.#piggyback(from), ...this.#digests() });
        return;
      case "ack": {
        this.#answeredWhileDead(from, now);
        this.table.heard(from, now);
        this.#applyAll(msg.g, false, from);
        if (msg.d) this.#init.onDigests?.(from, msg.d);
        const probe = this.#probes.get(msg.seq);
        if (probe && probe.target === from) {
          this.#sampleRtt(now - probe.sentAt);
          this.#probeDone(msg.seq, probe, true);
        }
        if (this.#relays.has(msg.seq)) this.#endRelay(msg.seq, true);
        return;
      }
      case "preq": {
        const seq = ++this.#seq;
        const relay = { asker: from, seq: msg.seq, timer: undefined as unknown };
        relay.timer = this.#deadline(
          () => this.#endRelay(seq, false),
          this.#probeTimeout(),
          (h) => (relay.timer = h),
        );
        this.#relays.set(seq, relay);
        this.#send(msg.target, { t: "ping", seq, g: [] });
        return;
      }
      case "pack": {
        const probe = this.#probes.get(msg.seq);
        if (!probe) return;
        if (msg.ok) this.#probeDone(msg.seq, probe, true);
        else if (++probe.nacks >= probe.indirect && probe.indirect > 0) {
          this.#probeDone(msg.seq, probe, false);
        }
        return;
      }
      case "gossip":
        this.#applyAll(msg.g, false, from);
        return;
      case "sync":
        this.table.heard(from, now);
        // Answer with our view as it was, before merging theirs, so each side learns the other's news: only
        // what theirs lacks (their view came whole; what both hold alike is news to neither).
        if (msg.reply) {
          this.#send(from, { t: "sync", members: this.table.updatesFor(msg.members), reply: false });
        }
        this.#applyAll(msg.members, true, from);
        if (!this.#links.has(from) && this.table.state(from)) this.#links.set(from, now);
        return;
      case "unlink":
        this.#unlinked.add(from);
        this.#cancelProbes(from);
        return;
    }
  }

  /** A member we hold dead spoke to us: the two sides of a partition meet; exchange whole views. */
  #answeredWhileDead(from: string, now: number): void {
    if (this.table.state(from)?.state !== "dead") return;
    if (now - (this.#revived.get(from) ?? 0) < this.#t.reconnectIntervalMs) return;
    this.#revived.set(from, now);
    this.#send(from, { t: "sync", members: this.table.updates(), reply: true });
  }

  /** Applies updates heard `from` a peer (left out for this member's own findings). */
  #applyAll(updates: MemberUpdate[], fromSync: boolean, from?: string): void {
    const now = this.#clock.now();
    for (const u of updates) {
      const lazy = this.table.isLoadOnly(u);
      const r = this.table.apply(u, now, fromSync);
      if (from !== undefined && !r.rebroadcast) this.#queue.heard(u, from);
      for (const e of r.events) this.#init.onEvent?.(e);
      if (r.rebroadcast) {
        const v: MemberUpdate = fromSync && u.st === "dead" ? { ...u, st: "suspect" } : u;
        this.#broadcast(v, v.st === "dead" || v.st === "left", lazy, from);
      }
      if (r.suspicion) this.#armSuspicion(r.suspicion.id, r.suspicion.inc, r.suspicion.confirmations);
      if (r.refute) {
        this.#awareness = Math.min(this.#t.awarenessMax, this.#awareness + 1);
        this.#broadcast(r.refute, true);
      }
      if (r.events.some((e) => e.type !== "agent:suspect")) this.#ownSuspicions.delete(u.id);
      if (r.events.some((e) => e.type === "agent:alive" || e.type === "agent:joined")) {
        this.#disarmSuspicion(u.id);
        this.#revived.delete(u.id);
      }
      if (r.events.some((e) => e.type === "agent:dead")) {
        this.#wideUntil = now + this.#t.randomProbesAfterDeathMs;
      }
      if (r.events.some((e) => e.type === "agent:dead" || e.type === "agent:left")) {
        this.#disarmSuspicion(u.id);
        if (this.#links.has(u.id)) {
          this.#unlinked.add(u.id);
          this.#init.transport.disconnect(u.id);
        }
      }
    }
  }

  /**
   * Queues `u` for gossip. `urgent` news (a death, a leave, a refutation) goes out within
   * `urgentGossipMs` rather than at the next round, so that failures reach everyone in ~log N hops of
   * latency while joins and slot changes share the slower rounds.
   */
  #broadcast(u: MemberUpdate, urgent = false, lazy = false, from?: string): void {
    this.#queue.push(u, lazy, from);
    if (this.#queue.eager === 0) return;
    const now = this.#clock.now();
    const delay = urgent ? this.#t.urgentGossipMs : this.#t.gossipIntervalMs;
    if (this.#timers.gossip !== undefined) {
      if (this.#gossipAt <= now + delay) return;
      this.#clock.clearTimeout(this.#timers.gossip);
    }
    this.#gossipAt = now + delay;
    this.#timers.gossip = this.#clock.setTimeout(() => this.#gossip(), delay);
  }

  #gossip(): void {
    this.#timers.gossip = undefined;
    if (this.#stopped || this.#queue.size === 0) return;
    const limit = retransmitLimit(this.#t, this.table.size);
    // While a death or leave is queued, `gossipFanout` links that lack some of the news go first: rounds spent
    // on links that held it all (they sent it to us) left a late joiner with few links unreached by a death
    // in 1 of 30 simulated seeds (found dead by its own timer 8 s later). Each round still counts
    // `gossipFanout` sends of every update it takes, so news leaves the queue after as many rounds as before.
    // Joins and slot changes keep random links: sending each to links that lack it doubled the CPU of forming.
    const links = this.#pickLinks(Infinity, undefined);
    const lacking = this.#queue.deaths > 0
      ? links.filter((p) => this.#queue.newsFor(p, this.#t.maxGossipItems))
      : [];
    const rest = lacking.length > 0 ? links.filter((p) => !lacking.includes(p)) : links;
    for (const peer of [...lacking, ...rest].slice(0, this.#t.gossipFanout)) {
      const g = this.#queue.take(this.#t.maxGossipItems, limit, peer);
      if (g.length === 0) continue; // that link holds all of it
      this.#send(peer, { t: "gossip", g });
    }
    if (this.#queue.eager > 0) {
      this.#gossipAt = this.#clock.now() + this.#t.gossipIntervalMs;
      this.#timers.gossip = this.#clock.setTimeout(() => this.#gossip(), this.#t.gossipIntervalMs);
    }
  }

  #piggyback(to: string): MemberUpdate[] {
    if (this.#queue.size === 0) return [];
    return this.#queue.take(this.#t.maxPiggyback, retransmitLimit(this.#t, this.table.size), to);
  }

  #digests(): { d?: Record<string, string> } {
    const d = this.#init.digests?.();
    return d ? { d } : {};
  }

  #armSuspicion(id: string, inc: number, confirmations: number): void {
    const s = this.table.state(id);
    if (!s || s.state !== "suspect") return;
    const expected = Math.min(this.#t.indirectChecks, Math.max(0, this.table.size - 2));
    const refused = this.#refused.has(id);
    // A starved member's own clock runs late (Lifeguard's local health): it waits longer before it
    // calls anyone dead on timeouts alone. A refused connection is proof whatever the load.
    const timeout = suspicionTimeout(this.#t, this.table.size, confirmations, expected, refused) *
      (refused ? 1 : 1 + this.#awareness);
    const left = Math.max(0, s.since + timeout - this.#clock.now());
    this.#disarmSuspicion(id, true);
    this.#suspicionTimers.set(
      id,
      this.#clock.setTimeout(() => {
        this.#suspicionTimers.delete(id);
        const now = this.table.state(id);
        if (now?.state === "suspect" && now.inc === inc) {
          this.#applyAll([{ id, inc, st: "dead", from: this.id }], false);
        }
      }, left),
    );
  }

  #disarmSuspicion(id: string, keepEvidence = false): void {
    if (!keepEvidence) this.#refused.delete(id);
    const h = this.#suspicionTimers.get(id);
    if (h !== undefined) {
      this.#clock.clearTimeout(h);
      this.#suspicionTimers.delete(id);
    }
  }

  /**
   * The direct-ack wait: the configured timeout, or more when acks have been slow (TCP's retransmission
   * timeout: smoothed round trip + 4 × its variation), times Lifeguard's local-health factor. On a machine
   * whose CPUs are all busy an ack takes hundreds of milliseconds; a fixed timeout then reads as deaths.
   */
  #probeTimeout(): number {
    const rto = this.#srtt === undefined ? 0 : this.#srtt + 4 * this.#rttvar;
    return Math.max(this.#t.probeTimeoutMs, rto) * (1 + this.#awareness);
  }

  /** Feeds one ack's round trip into the smoothed estimate (RFC 6298's gains). */
  #sampleRtt(ms: number): void {
    if (this.#srtt === undefined) {
      this.#srtt = ms;
      this.#rttvar = ms / 2;
      return;
    }
    this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - ms);
    this.#srtt = 0.875 * this.#srtt + 0.125 * ms;
  }

  #scheduleProbe(): void {
    if (this.#stopped) return;
    const ms = this.#t.probeIntervalMs * (1 + this.#awareness);
    const due = this.#clock.now() + ms;
    this.#timers.probe = this.#clock.setTimeout(() => {
      // A tick that runs late tells of this process's own starvation (Lifeguard's local health).
      this.#lagging = this.#clock.now() - due > this.#t.probeTimeoutMs / 2;
      if (this.#lagging) this.#awareness = Math.min(this.#t.awarenessMax, this.#awareness + 1);
      this.#tick();
      this.#scheduleProbe();
    }, ms);
  }

  /** Once per probe interval: probe one link, keep the link count in bounds, forget the long gone. */
  #tick(): void {
    const now = this.#clock.now();
    this.table.forget(now, this.#t.forgetAfterMs);
    // Still alone: the join's exchange of views was lost (a stream that failed to open on a loaded machine).
    // Ask the peers we dialled again, or this member would stay alone although connected.
    if (this.table.live.size === 0) {
      for (const peer of this.#links.keys()) {
        this.#send(peer, { t: "sync", members: this.table.updates(), reply: true });
      }
      return;
    }
    this.#maintainLinks(now);
    let target: string | undefined;
    while (!target && (this.#probeOrder.length || this.#links.size)) {
      if (this.#probeOrder.length === 0) this.#probeOrder = shuffle([...this.#links.keys()], this.#random);
      const next = this.#probeOrder.pop()!;
      if (this.#links.has(next)) target = next;
    }
    // For a while after a death, now and then a random member rather than a link: behind a partition, one
    // linked to none of this side would otherwise never be found dead here. It costs a connection, so
    // only then (a death is what a partition looks like from either side).
    if (
      now < this.#wideUntil && ++this.#ticks % this.#t.randomProbeEvery === 0 &&
      this.#random() < this.#deadShare()
    ) {
      const other = this.table.live.pick(this.#random);
      if (other && !this.#links.has(other)) target = other;
    }
    if (target) this.#probe(target);
  }

  #maintainLinks(now: number): void {
    // Links to members that are gone, or peers that never became members, do not count.
    for (const peer of this.#links.keys()) {
      const s = this.table.state(peer);
      if (!s && now - this.#links.get(peer)! > 10_000) this.#links.delete(peer);
    }
    const live = this.table.live;
    if (this.#links.size < this.#t.linksLow && live.size > this.#links.size) {
      for (let i = 0; i < 2; i++) {
        const peer = live.pick(this.#random);
        if (peer && !this.#links.has(peer)) this.#init.transport.connect(peer);
      }
    } else if (this.#links.size > this.#t.linksHigh) {
      // Close the excess, the oldest first (the newest links are what joiners are still using).
      const excess = [...this.#links].sort((a, b) => a[1] - b[1]).slice(
        0,
        this.#links.size - this.#t.linksHigh,
      );
      for (const [peer, since] of excess) {
        if (now - since < 5_000) continue;
        this.#cancelProbes(peer);
        this.#send(peer, { t: "unlink" });
        this.#links.delete(peer);
        this.#init.transport.disconnect(peer);
      }
    }
  }

  #probe(target: string): void {
    const seq = ++this.#seq;
    const probe: Probe = {
      target,
      timer: undefined,
      indirect: 0,
      nacks: 0,
      done: false,
      sentAt: this.#clock.now(),
    };
    probe.timer = this.#deadline(
      () => this.#indirect(seq, probe),
      this.#probeTimeout(),
      (h) => (probe.timer = h),
    );
    this.#probes.set(seq, probe);
    this.#send(target, { t: "ping", seq, g: this.#piggyback(target), ...this.#digests() });
  }

  #indirect(seq: number, probe: Probe): void {
    if (probe.done || probe.indirect > 0) return;
    this.#clock.clearTimeout(probe.timer);
    const helpers = this.#pickLinks(this.#t.indirectChecks, probe.target);
    probe.indirect = helpers.length;
    for (const h of helpers) this.#send(h, { t: "preq", seq, target: probe.target });
    // The rest of the probe interval for the helpers' answers (memberlist waits until the next probe).
    const wait = Math.max(
      this.#probeTimeout(),
      this.#t.probeIntervalMs * (1 + this.#awareness) - this.#probeTimeout(),
    );
    probe.timer = this.#deadline(
      () => this.#probeDone(seq, probe, false),
      helpers.length ? wait : 0,
      (h) => (probe.timer = h),
    );
  }

  /**
   * A timeout that, when it fires late by more than half its length, waits that half once more: this process
   * was starved (a loaded machine), and the answer it waits for may be read but not yet handled. Without this,
   * 32 agents starting at once on 2 cores suspected each other for half a minute. `rearm` gets the new handle.
   */
  #deadline(fn: () => void, ms: number, rearm: (h: unknown) => void): unknown {
    const due = this.#clock.now() + ms;
    return this.#clock.setTimeout(() => {
      const late = this.#clock.now() - due;
      if (ms > 0 && late > ms / 2) {
        rearm(this.#clock.setTimeout(fn, ms / 2));
      } else fn();
    }, ms);
  }

  #probeDone(seq: number, probe: Probe, ok: boolean): void {
    if (probe.done) return;
    probe.done = true;
    this.#clock.clearTimeout(probe.timer);
    this.#probes.delete(seq);
    if (ok) {
      this.#awareness = Math.max(0, this.#awareness - 1);
      return;
    }
    // Every helper said it could not reach the target either: the target, not us, is the problem.
    if (probe.nacks < probe.indirect || probe.indirect === 0) {
      this.#awareness = Math.min(this.#t.awarenessMax, this.#awareness + 1);
    }
    // Nobody else to ask while we still join (one link, others known): our own slowness is as likely.
    if (probe.indirect === 0 && !probe.sendFailed && this.table.size > 2) return;
    const s = this.table.state(probe.target);
    if (!probe.sendFailed && s?.state === "alive" && !this.#maySuspectOnTimeout()) {
      this.#awareness = Math.min(this.#t.awarenessMax, this.#awareness + 1);
      return;
    }
    if (s?.state === "alive" || s?.state === "suspect") {
      if (!probe.sendFailed && s.state === "alive") this.#ownSuspicions.add(probe.target);
      if (probe.sendFailed) this.#refused.add(probe.target);
      this.#applyAll([{ id: probe.target, inc: s.inc, st: "suspect", from: this.id }], false);
      // Already suspect (someone else's suspicion): our refused connection shortens our own timer.
      if (probe.sendFailed && s.state === "suspect") {
        this.#armSuspicion(probe.target, s.inc, this.table.suspecters(probe.target));
      }
    }
  }

  /**
   * Whether a probe that only timed out may make this member suspect another. Not while it is itself late
   * (its tick ran late), still joining (`joinGraceMs`), or already suspecting `maxOwnSuspicions` others on
   * such evidence: independent hangs are rare, and many timeouts at once mean a starved machine — on 2
   * cores, 100 agents starting made thousands of false suspicions feed each other. A refused connection
   * (a process gone) is always evidence.
   */
  #maySuspectOnTimeout(): boolean {
    if (this.#lagging) return false;
    if (this.#clock.now() - this.#startedAt < this.#t.joinGraceMs) return false;
    return this.#ownSuspicions.size < this.#t.maxOwnSuspicions;
  }

  /** A probe over a link closed on purpose proves nothing either way. */
  #cancelProbes(peer: string): void {
    for (const [seq, p] of this.#probes) {
      if (p.target !== peer || p.indirect > 0) continue;
      p.done = true;
      this.#clock.clearTimeout(p.timer);
      this.#probes.delete(seq);
    }
  }

  #endRelay(seq: number, ok: boolean): void {
    const r = this.#relays.get(seq);
    if (!r) return;
    this.#relays.delete(seq);
    this.#clock.clearTimeout(r.timer);
    this.#send(r.asker, { t: "pack", seq: r.seq, ok });
  }

  /** A push-pull with a random member, or (`linked`) a random link: that costs no new connection. */
  #syncRandom(linked = false): void {
    if (this.#stopped) return;
    const peer = linked && this.#links.size
      ? this.#pickLinks(1, undefined)[0]
      : this.table.live.pick(this.#random);
    if (peer) this.#send(peer, { t: "sync", members: this.table.updates(), reply: true });
  }

  #pushPull(): void {
    this.#syncRandom(true);
    if (this.#stopped) return;
    this.#timers.pushPull = this.#clock.setTimeout(
      () => this.#pushPull(),
      this.#jitter(pushPullInterval(this.#t, this.table.size)),
    );
  }

  #reconnect(): void {
    if (this.#stopped) return;
    // A dead member that answers the ping gets our whole view (`#answeredWhileDead`). The ping needs a new
    // connection, so only with the dead share's probability (Serf's reconnect): the alive members together
    // try each dead one about once per interval, whatever N, rather than N times.
    const peer = this.#random() < this.#deadShare() ? this.table.dead.pick(this.#random) : undefined;
    if (peer) this.#send(peer, { t: "ping", seq: ++this.#seq, g: [] });
    this.#timers.reconnect = this.#clock.setTimeout(
      () => this.#reconnect(),
      this.#jitter(this.#t.reconnectIntervalMs),
    );
  }

  /**
   * Dead members per live one (at most 1): the chance that this member spends a connection on a dead or
   * unlinked member this round. Both sides of a partition into halves see about as many dead as alive and
   * try every round; one false death among 100 costs the mesh one try per round, not 99.
   */
  #deadShare(): number {
    return Math.min(1, this.table.dead.size / Math.max(1, this.table.live.size));
  }

  /** Up to `n` random links other than `except`. */
  #pickLinks(n: number, except: string | undefined): string[] {
    const all = [...this.#links.keys()].filter((p) => p !== except);
    return shuffle(all, this.#random).slice(0, n);
  }

  #send(to: string, msg: SwimMessage): void {
    this.counters.sent++;
    this.#init.transport.send(to, msg);
  }

  /** ±10 % so that members started together do not act in step. */
  #jitter(ms: number): number {
    return ms * (0.9 + 0.2 * this.#random());
  }
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

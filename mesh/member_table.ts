/**
 * The membership view as a pure state machine: SWIM updates in (alive, suspect, dead, left, each with the
 * member's incarnation number), transitions out. Rules follow hashicorp/memberlist's `state.go`: a higher
 * incarnation wins; at equal incarnation suspect beats alive and dead beats suspect; only a member raises
 * its own incarnation, to refute what others say of it. Time is passed in; nothing here runs a timer.
 *
 * @module
 */
import type { MemberMeta, MemberState, MemberUpdate } from "./swim_types.ts";
import type { Member, MembershipEvent } from "./types.ts";

/** A member with what the protocol keeps about it. */
interface Entry {
  id: string;
  inc: number;
  state: MemberState;
  addrs: string[];
  meta: MemberMeta;
  /** Last time anything was heard of it (ms since epoch). */
  lastSeen: number;
  /** When it entered its current state. */
  since: number;
  /** Distinct members that suspect it, while suspect. */
  suspecters?: Set<string>;
}

/** What applying one update did. */
export interface ApplyResult {
  events: MembershipEvent[];
  /** The update was news: pass it on. */
  rebroadcast: boolean;
  /** Suspicion of this member started or gained a confirmation: its timer needs (re)arming. */
  suspicion?: { id: string; inc: number; confirmations: number };
  /** Someone said this member is not alive (or was, in an earlier life): our refutation to send. */
  refute?: MemberUpdate;
}

const NOTHING: ApplyResult = Object.freeze({ events: [], rebroadcast: false }) as ApplyResult;

/** A set with O(1) add, delete and uniform random pick. */
class PickSet {
  readonly #items: string[] = [];
  readonly #index = new Map<string, number>();
  get size(): number {
    return this.#items.length;
  }
  add(id: string): void {
    if (this.#index.has(id)) return;
    this.#index.set(id, this.#items.length);
    this.#items.push(id);
  }
  delete(id: string): void {
    const i = this.#index.get(id);
    if (i === undefined) return;
    const last = this.#items.pop()!;
    if (last !== id) {
      this.#items[i] = last;
      this.#index.set(last, i);
    }
    this.#index.delete(id);
  }
  has(id: string): boolean {
    return this.#index.has(id);
  }
  pick(random: () => number): string | undefined {
    return this.#items[Math.floor(random() * this.#items.length)];
  }
  values(): readonly string[] {
    return this.#items;
  }
}

/** Peers' states as seen from one member (or a light peer, which has no self entry). */
export class MemberTable {
  readonly #self: string;
  readonly #members = new Map<string, Entry>();
  /** Alive or suspect members other than self. */
  readonly live: PickSet = new PickSet();
  /** Dead (not left) members: tried again now and then, so partitions heal. */
  readonly dead: PickSet = new PickSet();
  /** Dead or left members in the order they went, for forgetting in O(1) per tick. */
  readonly #gone: { id: string; since: number }[] = [];

  /** `self` is this member's ID (empty for a light peer). */
  constructor(self: string) {
    this.#self = self;
  }

  /** Members alive or suspect, self included: the N of every log N. */
  get size(): number {
    return this.live.size + (this.#members.has(this.#self) ? 1 : 0);
  }

  /** Adds or replaces this member's own entry (always alive). */
  setSelf(inc: number, addrs: string[], meta: MemberMeta, now: number): MemberUpdate {
    this.#members.set(this.#self, {
      id: this.#self,
      inc,
      state: "alive",
      addrs,
      meta,
      lastSeen: now,
      since: now,
    });
    return { id: this.#self, inc, st: "alive", addrs, meta };
  }

  /** This member's incarnation. */
  get selfIncarnation(): number {
    return this.#members.get(this.#self)?.inc ?? 0;
  }

  /** Records that `id` answered directly. */
  heard(id: string, now: number): void {
    const m = this.#members.get(id);
    if (m) m.lastSeen = now;
  }

  /**
   * Applies an update received at `now`. `fromSync` marks updates of a push-pull, where a remote "dead" only
   * makes the member suspect (as memberlist's `mergeState`), so that it can still refute.
   */
  apply(u: MemberUpdate, now: number, fromSync = false): ApplyResult {
    if (u.id === this.#self) return this.#aboutSelf(u);
    const cur = this.#members.get(u.id);
    const st = fromSync && u.st === "dead" ? "suspect" : u.st;
    if (st === "alive") {
      if (cur && u.inc <= cur.inc) {
        if (cur.state === "alive" || cur.state === "suspect") cur.lastSeen = now;
        return NOTHING;
      }
      if (!u.meta) return NOTHING; // an alive update always carries what the member says of itself
      const restarted = !cur || cur.meta.startedAt !== u.meta.startedAt;
      const was = cur?.state;
      this.#set(u.id, {
        id: u.id,
        inc: u.inc,
        state: "alive",
        addrs: u.addrs ?? cur?.addrs ?? [],
        meta: u.meta,
        lastSeen: now,
        since: was === "alive" ? cur!.since : now,
      });
      const at = now;
      const host = u.meta.host;
      const events: MembershipEvent[] = restarted
        ? [{ type: "agent:joined", id: u.id, host, at }]
        : was !== "alive"
        ? [{ type: "agent:alive", id: u.id, host, at }]
        : [];
      return { events, rebroadcast: true };
    }
    if (!cur || u.inc < cur.inc || cur.state === "dead" || cur.state === "left") return NOTHING;
    const from = u.from ?? "";
    if (st === "suspect") {
      if (cur.state === "suspect") {
        if (cur.suspecters!.has(from)) return NOTHING;
        cur.suspecters!.add(from);
        return {
          events: [],
          rebroadcast: true,
          suspicion: { id: u.id, inc: cur.inc, confirmations: cur.suspecters!.size - 1 },
        };
      }
      cur.inc = u.inc;
      cur.state = "suspect";
      cur.since = now;
      cur.suspecters = new Set([from]);
      return {
        events: [{ type: "agent:suspect", id: u.id, host: cur.meta.host, at: now }],
        rebroadcast: true,
        suspicion: { id: u.id, inc: u.inc, confirmations: 0 },
      };
    }
    cur.inc = u.inc;
    this.#set(u.id, { ...cur, state: st, since: now, suspecters: undefined });
    const type = st === "left" ? "agent:left" : "agent:dead";
    return { events: [{ type, id: u.id, host: cur.meta.host, at: now }], rebroadcast: true };
  }

  #aboutSelf(u: MemberUpdate): ApplyResult {
    const me = this.#members.get(this.#self);
    if (!me) return NOTHING;
    // Others think we are not alive, or heard of an earlier life with a higher incarnation: refute.
    if (u.st === "alive" ? u.inc > me.inc : u.inc >= me.inc) {
      me.inc = u.inc + 1;
      return {
        events: [],
        rebroadcast: false,
        refute: { id: me.id, inc: me.inc, st: "alive", addrs: me.addrs, meta: me.meta },
      };
    }
    return NOTHING;
  }

  #set(id: string, e: Entry): void {
    this.#members.set(id, e);
    if (e.state === "alive" || e.state === "suspect") {
      this.live.add(id);
      this.dead.delete(id);
    } else {
      this.live.delete(id);
      if (e.state === "dead") this.dead.add(id);
      else this.dead.delete(id);
      this.#gone.push({ id, since: e.since });
    }
  }

  /** The member's state and incarnation, if known. */
  state(id: string): { state: MemberState; inc: number; since: number } | undefined {
    const m = this.#members.get(id);
    return m && { state: m.state, inc: m.inc, since: m.since };
  }

  /** Independent confirmations of a suspect member's suspicion (suspecters beyond the first). */
  suspecters(id: string): number {
    return Math.max(0, (this.#members.get(id)?.suspecters?.size ?? 1) - 1);
  }

  /** Addresses to dial `id` at. */
  addrs(id: string): string[] {
    return this.#members.get(id)?.addrs ?? [];
  }

  /** Forgets members dead or left for `afterMs` at `now`. Amortised O(1). */
  forget(now: number, afterMs: number): void {
    while (this.#gone.length && now - this.#gone[0]!.since >= afterMs) {
      const { id, since } = this.#gone.shift()!;
      const m = this.#members.get(id);
      if (m && (m.state === "dead" || m.state === "left") && m.since === since) {
        this.#members.delete(id);
        this.dead.delete(id);
      }
    }
  }

  /** Every entry as an update, for a push-pull. */
  updates(): MemberUpdate[] {
    return [...this.#members.values()].map((m) => ({
      id: m.id,
      inc: m.inc,
      st: m.state,
      addrs: m.addrs,
      ...(m.state === "alive" || m.state === "suspect" ? { meta: m.meta } : {}),
      ...(m.suspecters ? { from: this.#self } : {}),
    }));
  }

  /**
   * The part of {@linkcode updates} that tells the sender of `theirs` (a push-pull's whole view) something:
   * members it does not list, or lists at an older incarnation or in another state. Each incarnation of a
   * member has one meta, so an entry equal in both is news to nobody; answering a push-pull with only
   * these keeps a periodic exchange between two members that agree near empty instead of N entries.
   */
  updatesFor(theirs: readonly MemberUpdate[]): MemberUpdate[] {
    const known = new Map<string, MemberUpdate>();
    for (const u of theirs) known.set(u.id, u);
    return this.updates().filter((u) => {
      const t = known.get(u.id);
      return !t || t.inc < u.inc || (t.inc === u.inc && t.st !== u.st);
    });
  }

  /**
   * Whether `u` tells nothing new of an alive member but its load figure: news nobody waits for, passed on
   * lazily (see `BroadcastQueue.push`).
   */
  isLoadOnly(u: MemberUpdate): boolean {
    const m = this.#members.get(u.id);
    if (!m || m.state !== "alive" || u.st !== "alive" || !u.meta || u.inc <= m.inc) return false;
    if (u.addrs && u.addrs.join(" ") !== m.addrs.join(" ")) return false;
    const a = m.meta;
    const b = u.meta;
    return a.host === b.host && a.version === b.version && a.startedAt === b.startedAt && a.gpus === b.gpus &&
      a.group === b.group && a.slots.total === b.slots.total && a.slots.free === b.slots.free &&
      JSON.stringify(a.labels) === JSON.stringify(b.labels);
  }

  /** One member as the view shows it. */
  get(id: string): Member | undefined {
    const m = this.#members.get(id);
    return m ? toMember(m) : undefined;
  }

  /** Every known member, sorted by host then ID. */
  members(): Member[] {
    return [...this.#members.values()].map(toMember).sort((a, b) =>
      a.host === b.host ? a.id.localeCompare(b.id) : a.host.localeCompare(b.host)
    );
  }
}

function toMember(m: Entry): Member {
  return {
    id: m.id,
    host: m.meta.host,
    addrs: m.addrs,
    slots: m.meta.slots,
    version: m.meta.version,
    load: m.meta.load,
    startedAt: m.meta.startedAt,
    gpus: m.meta.gpus,
    labels: m.meta.labels,
    group: m.meta.group,
    state: m.state,
    lastSeen: m.lastSeen,
    incarnation: m.inc,
  };
}

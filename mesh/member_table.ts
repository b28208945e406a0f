/**
 * The membership view as a pure state machine: heartbeats in, alive/suspect/dead transitions out.
 * Time is passed in, so tests drive it without a clock.
 *
 * @module
 */
import type { Heartbeat, Member, MembershipEvent } from "./types.ts";

/** Timing of failure detection. */
export interface MemberTableOptions {
  /** A member unheard for this long is suspect (default 3 s). */
  suspectAfterMs?: number;
  /** A member unheard for this long is dead (default 5 s). */
  deadAfterMs?: number;
  /** Dead or left members are forgotten after this long (default 10 min). */
  forgetAfterMs?: number;
}

/** Peers' states as seen from one peer. */
export class MemberTable {
  readonly #members = new Map<string, Member & { seq: number; heardAt: number }>();
  readonly #suspectAfter: number;
  readonly #deadAfter: number;
  readonly #forgetAfter: number;

  constructor(options: MemberTableOptions = {}) {
    this.#suspectAfter = options.suspectAfterMs ?? 3_000;
    this.#deadAfter = options.deadAfterMs ?? 5_000;
    this.#forgetAfter = options.forgetAfterMs ?? 600_000;
  }

  /** Records a heartbeat received at `now`; returns the events it causes. */
  observe(hb: Heartbeat, now: number): MembershipEvent[] {
    const prev = this.#members.get(hb.id);
    if (prev && hb.startedAt === prev.startedAt && hb.seq <= prev.seq) return [];
    if (prev && prev.state === "left" && hb.startedAt === prev.startedAt) return [];
    const member = {
      id: hb.id,
      host: hb.host,
      addrs: hb.addrs,
      slots: hb.slots,
      version: hb.version,
      load: hb.load,
      startedAt: hb.startedAt,
      gpus: hb.gpus ?? 0,
      labels: hb.labels ?? {},
      group: hb.group ?? "",
      state: "alive" as const,
      lastSeen: now,
      seq: hb.seq,
      heardAt: now,
    };
    this.#members.set(hb.id, member);
    const at = now;
    if (!prev) return [{ type: "agent:joined", id: hb.id, host: hb.host, at }];
    if (prev.state === "alive") return [];
    if (prev.startedAt !== hb.startedAt) return [{ type: "agent:joined", id: hb.id, host: hb.host, at }];
    return [{ type: "agent:alive", id: hb.id, host: hb.host, at }];
  }

  /** Marks a member that said it leaves. */
  leave(id: string, now: number): MembershipEvent[] {
    const m = this.#members.get(id);
    if (!m || m.state === "left" || m.state === "dead") return [];
    m.state = "left";
    m.heardAt = now;
    return [{ type: "agent:left", id, host: m.host, at: now }];
  }

  /** Marks a member suspect early, e.g. when its connection dropped. */
  suspect(id: string, now: number): MembershipEvent[] {
    const m = this.#members.get(id);
    if (!m || m.state !== "alive") return [];
    m.state = "suspect";
    return [{ type: "agent:suspect", id, host: m.host, at: now }];
  }

  /** Applies timeouts at `now`; returns the transitions. */
  sweep(now: number): MembershipEvent[] {
    const events: MembershipEvent[] = [];
    for (const m of this.#members.values()) {
      const silent = now - m.heardAt;
      if ((m.state === "dead" || m.state === "left") && silent >= this.#forgetAfter) {
        this.#members.delete(m.id);
      } else if ((m.state === "alive" || m.state === "suspect") && silent >= this.#deadAfter) {
        m.state = "dead";
        events.push({ type: "agent:dead", id: m.id, host: m.host, at: now });
      } else if (m.state === "alive" && silent >= this.#suspectAfter) {
        m.state = "suspect";
        events.push({ type: "agent:suspect", id: m.id, host: m.host, at: now });
      }
    }
    return events;
  }

  /** Returns one member. */
  get(id: string): Member | undefined {
    const m = this.#members.get(id);
    return m ? toMember(m) : undefined;
  }

  /** Returns every known member, sorted by host then ID. */
  members(): Member[] {
    return [...this.#members.values()].map(toMember).sort((a, b) =>
      a.host === b.host ? a.id.localeCompare(b.id) : a.host.localeCompare(b.host)
    );
  }
}

function toMember(m: Member & { seq: number; heardAt: number }): Member {
  const { seq: _seq, heardAt: _heardAt, ...member } = m;
  return member;
}

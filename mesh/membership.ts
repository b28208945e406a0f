/**
 * Membership over gossip: agents announce themselves every second; every peer keeps a view with
 * alive / suspect / dead states, dials the agents it learns about and serves its view on request.
 *
 * @module
 */
import { EventHub } from "./event_hub.ts";
import { MemberTable, type MemberTableOptions } from "./member_table.ts";
import type { MeshNode } from "./node.ts";
import { handleRequests } from "./rpc.ts";
import {
  type Heartbeat,
  type Member,
  MEMBERSHIP_TOPIC,
  type MembershipEvent,
  MembershipMessageSchema,
  VIEW_PROTOCOL,
} from "./types.ts";
import * as v from "valibot";

/** What an agent says about itself; `id`, `addrs`, `seq` and `startedAt` are filled in. */
export type SelfInfo = Omit<Heartbeat, "type" | "id" | "addrs" | "seq" | "startedAt">;

/** Options for {@linkcode startMembership}. */
export interface MembershipInit extends MemberTableOptions {
  node: MeshNode;
  /** For agents: what to announce. Light peers (CLI, monitor) leave it out and only listen. */
  self?: () => SelfInfo;
  /** Heartbeat period (default 1 s). */
  intervalMs?: number;
  /** Dial agents learnt from heartbeats, up to this many connections (default 64; 0 disables). */
  maxDialPeers?: number;
}

/** A running membership view. */
export class Membership implements AsyncDisposable {
  readonly events: EventHub<MembershipEvent> = new EventHub();
  /** Every heartbeat heard from another agent, as received. */
  readonly heartbeats: EventHub<Heartbeat> = new EventHub();
  readonly #node: MeshNode;
  readonly #table: MemberTable;
  readonly #self: (() => SelfInfo) | undefined;
  readonly #maxDial: number;
  readonly #startedAt = Date.now();
  readonly #dialing = new Map<string, number>();
  #seq = 0;
  #timers: ReturnType<typeof setInterval>[] = [];
  #off: (() => void) | undefined;
  #onDisconnect = (evt: CustomEvent<{ toString(): string }>) => {
    this.#emit(this.#table.suspect(evt.detail.toString(), Date.now()));
  };
  #soon: ReturnType<typeof setTimeout> | undefined;
  #onSubscribe = (evt: CustomEvent<{ subscriptions: { topic: string; subscribe: boolean }[] }>) => {
    if (evt.detail.subscriptions.some((s) => s.subscribe && s.topic === MEMBERSHIP_TOPIC)) this.announce();
  };
  #stopped = false;

  constructor(init: MembershipInit) {
    this.#node = init.node;
    this.#table = new MemberTable(init);
    this.#self = init.self;
    this.#maxDial = init.maxDialPeers ?? 64;
  }

  /** This peer's ID. */
  get id(): string {
    return this.#node.peerId;
  }

  /** Every known member, this agent included. */
  members(): Member[] {
    return this.#table.members();
  }

  /** Starts listening (and announcing, for agents). */
  async start(intervalMs = 1_000): Promise<void> {
    this.#off = this.#node.subscribe(MEMBERSHIP_TOPIC, MembershipMessageSchema, (msg, from) => {
      if (msg.id !== from) {
        this.#node.malformed(MEMBERSHIP_TOPIC, new Error(`peer ${from} spoke for ${msg.id}`));
        return;
      }
      if (msg.type === "leave") this.#emit(this.#table.leave(msg.id, Date.now()));
      else this.#observe(msg);
    });
    this.#node.libp2p.addEventListener("peer:disconnect", this.#onDisconnect);
    await handleRequests(this.#node, VIEW_PROTOCOL, {
      schema: v.object({}),
      handler: () => ({ from: this.id, members: this.members() }),
    });
    if (this.#self) {
      // A peer that just subscribed learns about us now rather than at the next beat.
      this.#node.libp2p.services.pubsub.addEventListener("subscription-change", this.#onSubscribe);
      this.#announce();
      this.#timers.push(setInterval(() => this.#announce(), intervalMs));
    }
    this.#timers.push(setInterval(() => this.#emit(this.#table.sweep(Date.now())), intervalMs / 4));
  }

  /**
   * Announces this agent soon (e.g. after its free slots changed). Calls within a short window share one
   * heartbeat: a thousand tasks ending at once must not become a thousand gossip messages.
   */
  announce(): void {
    this.#soon ??= setTimeout(() => {
      this.#soon = undefined;
      this.#announce();
    }, 25);
  }

  #observe(hb: Heartbeat): void {
    this.#emit(this.#table.observe(hb, Date.now()));
    if (hb.id !== this.id) this.heartbeats.emit(hb);
    if (hb.id === this.id || this.#maxDial === 0) return;
    const connections = this.#node.libp2p.getConnections();
    if (connections.length >= this.#maxDial) return;
    if (connections.some((c) => c.remotePeer.toString() === hb.id)) return;
    const last = this.#dialing.get(hb.id) ?? 0;
    if (Date.now() - last < 5_000) return;
    this.#dialing.set(hb.id, Date.now());
    const addr = hb.addrs[0];
    if (addr) this.#node.dial(addr, { signal: AbortSignal.timeout(5_000) }).catch(() => {});
  }

  #announce(): void {
    if (!this.#self || this.#stopped) return;
    const hb: Heartbeat = {
      type: "heartbeat",
      ...this.#self(),
      id: this.id,
      addrs: this.#node.addresses(),
      seq: ++this.#seq,
      startedAt: this.#startedAt,
    };
    this.#emit(this.#table.observe(hb, Date.now()));
    this.#node.publish(MEMBERSHIP_TOPIC, hb).catch(() => {});
  }

  #emit(events: MembershipEvent[]): void {
    for (const e of events) this.events.emit(e);
  }

  /** Stops announcing; an agent tells the others it leaves. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#off?.();
    this.#node.libp2p.removeEventListener("peer:disconnect", this.#onDisconnect);
    this.#node.libp2p.services.pubsub.removeEventListener("subscription-change", this.#onSubscribe);
    clearTimeout(this.#soon);
    if (this.#self) {
      await this.#node.publish(MEMBERSHIP_TOPIC, { type: "leave", id: this.id }).catch(() => {});
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Creates and starts a membership view on `init.node`. */
export async function startMembership(init: MembershipInit): Promise<Membership> {
  const m = new Membership(init);
  await m.start(init.intervalMs);
  return m;
}

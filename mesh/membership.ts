/**
 * Membership of a mesh node: the SWIM protocol of `swim.ts` over libp2p. Each agent keeps one long-lived
 * outbound stream per linked peer for membership messages (length-prefixed CBOR, schema-checked); links
 * are the node's connections to other agents, kept between `linksLow` and `linksHigh` by the protocol.
 * Light peers (the CLI, monitors) are no members: they read an agent's view (`VIEW_PROTOCOL`) or follow
 * its membership events (`VIEW_WATCH_PROTOCOL`).
 *
 * @module
 */
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import * as v from "valibot";
import { decode, encode } from "./codec.ts";
import { EventHub } from "./event_hub.ts";
import type { MeshNode } from "./node.ts";
import { handleRequests } from "./rpc.ts";
import { REAL_CLOCK, Swim, type SwimClock } from "./swim.ts";
import type { SwimTiming } from "./swim_timing.ts";
import { type MemberMeta, SWIM_PROTOCOL, type SwimMessage, SwimMessageSchema } from "./swim_types.ts";
import {
  type Member,
  type MembershipEvent,
  MembershipEventSchema,
  VIEW_PROTOCOL,
  VIEW_WATCH_PROTOCOL,
} from "./types.ts";

/** What an agent says about itself (`startedAt` is filled in). */
export type SelfInfo = Omit<MemberMeta, "startedAt" | "gpus" | "labels" | "group"> & Partial<MemberMeta>;

/** Options for {@linkcode startMembership}. */
export interface MembershipInit {
  node: MeshNode;
  /** For agents: what to announce. Light peers (CLI, monitor) leave it out and follow an agent's view. */
  self?: () => SelfInfo;
  /** Protocol timing (see `swim_timing.ts`). */
  timing?: Partial<SwimTiming>;
  clock?: SwimClock;
}

/** A peer's digests as heard on a probe or ack. */
export interface PeerDigests {
  id: string;
  digests: Record<string, string>;
}

const MAX_SWIM_BYTES = 16 * 1024 * 1024;

/** A running membership view. */
export class Membership implements AsyncDisposable {
  readonly events: EventHub<MembershipEvent> = new EventHub();
  /** Digests of replicated state heard from peers, one event per probe or ack received. */
  readonly digests: EventHub<PeerDigests> = new EventHub();
  readonly #node: MeshNode;
  readonly #init: MembershipInit;
  #swim: Swim | undefined;
  /** Outbound membership streams, with what waits while one opens. */
  readonly #out = new Map<
    string,
    { stream?: Stream; write?: (b: Uint8Array) => void; written?: () => Promise<void>; queue: SwimMessage[] }
  >();
  readonly #watchers = new Set<(e: MembershipEvent) => void>();
  /** Addresses last written to the peer store, per member (one entry per member ever dialled). */
  readonly #digestSources = new Map<string, () => string>();
  #startedAt = Date.now();
  #soon: ReturnType<typeof setTimeout> | undefined;
  #soonLazy = false;
  #lightView: Member[] = [];
  #stopped = false;
  /** Connections opened and closed (to any peer, tools included) since start. */
  readonly connectionCounts = { opened: 0, closed: 0, dialled: 0 };
  readonly #onConnect = (evt: CustomEvent<PeerId>) => {
    this.connectionCounts.opened++;
    const peer = evt.detail.toString();
    const conn = this.#node.libp2p.getConnections(evt.detail)[0];
    this.#swim?.linkUp(peer, conn?.direction === "outbound");
  };
  readonly #onDisconnect = (evt: CustomEvent<PeerId>) => {
    this.connectionCounts.closed++;
    const peer = evt.detail.toString();
    this.#closeOut(peer);
    this.#swim?.linkDown(peer);
  };

  constructor(init: MembershipInit) {
    this.#node = init.node;
    this.#init = init;
  }

  /** This peer's ID. */
  get id(): string {
    return this.#node.peerId;
  }

  /** The protocol engine (agents only). */
  get swim(): Swim | undefined {
    return this.#swim;
  }

  /** Every known member, this agent included (for a light peer: the followed agent's view). */
  members(): Member[] {
    return this.#swim ? this.#swim.table.members() : this.#lightView;
  }

  /** Starts the protocol (agents) or follows a connected agent's view (light peers). */
  async start(): Promise<void> {
    if (!this.#init.self) return await this.#follow();
    this.#startedAt = Date.now();
    const node = this.#node;
    const swim = new Swim({
      id: node.peerId,
      addrs: node.addresses(),
      meta: this.#meta(),
      clock: this.#init.clock ?? REAL_CLOCK,
      ...(this.#init.timing ? { timing: this.#init.timing } : {}),
      digests: () => {
        if (this.#digestSources.size === 0) return undefined;
        const d: Record<string, string> = {};
        for (const [k, f] of this.#digestSources) d[k] = f();
        return d;
      },
      onEvent: (e) => {
        this.events.emit(e);
        for (const w of this.#watchers) w(e);
      },
      onDigests: (id, digests) => this.digests.emit({ id, digests }),
      transport: {
        send: (to, msg) => this.#send(to, msg),
        // Already connected (it dialled us before we knew it): the link is up now.
        connect: (to) =>
          void this.#dial(to).then(() => this.#swim?.linkUp(to, true), () => this.#swim?.linkFailed(to)),
        disconnect: (to) => {
          // Let the unlink message go out first. A hang-up that fails: the connection is gone already.
          setTimeout(() => void node.libp2p.hangUp(peerIdFromString(to)).catch(() => {}), 100);
        },
      },
    });
    this.#swim = swim;
    // Streams by peer ID (leases, requests) reach members this agent never linked to.
    node.addressesOf = (peer) => swim.table.addrs(peer);
    await node.libp2p.handle(SWIM_PROTOCOL, (stream, connection) => void this.#read(stream, connection), {
      maxInboundStreams: 64,
      maxOutboundStreams: 64,
    });
    await handleRequests(node, VIEW_PROTOCOL, {
      schema: v.object({}),
      handler: () => ({ from: this.id, members: this.members() }),
    });
    await node.libp2p.handle(VIEW_WATCH_PROTOCOL, (stream) => this.#serveWatch(stream), {
      maxInboundStreams: 256,
    });
    node.libp2p.addEventListener("peer:connect", this.#onConnect);
    node.libp2p.addEventListener("peer:disconnect", this.#onDisconnect);
    for (const conn of node.libp2p.getConnections()) {
      swim.linkUp(conn.remotePeer.toString(), conn.direction === "outbound");
    }
    swim.start();
  }

  #meta(): MemberMeta {
    const s = this.#init.self!();
    return { gpus: 0, labels: {}, group: "", ...s, startedAt: this.#startedAt };
  }

  /**
   * Adds a digest of replicated state (e.g. `kv`) to every probe and ack this agent sends; peers compare it
   * with theirs (`digests` events) and exchange state when they differ. Returns a function that removes it.
   */
  provideDigest(key: string, digest: () => string): () => void {
    this.#digestSources.set(key, digest);
    return () => this.#digestSources.delete(key);
  }

  /**
   * Announces this agent's changed figures soon (e.g. free slots). Calls within a short window share one
   * update: a thousand tasks ending at once must not become a thousand gossip messages. A `lazy` change
   * (the load figure, for people to read) rides on messages sent anyway instead of gossip rounds of its own.
   */
  announce(options: { lazy?: boolean } = {}): void {
    if (!this.#swim || this.#stopped) return;
    this.#soonLazy = (this.#soon === undefined || this.#soonLazy) && options.lazy === true;
    this.#soon ??= setTimeout(() => {
      this.#soon = undefined;
      if (!this.#stopped) this.#swim?.update(this.#meta(), this.#node.addresses(), this.#soonLazy);
    }, 100);
  }

  /** Announces this agent's changed figures at once (before it joins: the join's exchange carries them). */
  announceNow(): void {
    if (!this.#swim || this.#stopped) return;
    clearTimeout(this.#soon);
    this.#soon = undefined;
    this.#swim.update(this.#meta(), this.#node.addresses());
  }

  async #dial(to: string): Promise<Connection> {
    const id = peerIdFromString(to);
    const existing = this.#node.libp2p.getConnections(id)[0];
    if (existing) return existing;
    this.connectionCounts.dialled++;
    await this.#node.learnAddresses(to, this.#swim?.table.addrs(to) ?? []);
    return await this.#node.libp2p.dial(id, { signal: AbortSignal.timeout(5_000) });
  }

  #send(to: string, msg: SwimMessage): void {
    let out = this.#out.get(to);
    if (out?.write) return out.write(encode(msg));
    if (out) {
      out.queue.push(msg);
      return;
    }
    out = { queue: [msg] };
    this.#out.set(to, out);
    const entry = out;
    (async () => {
      await this.#dial(to);
      const stream = await this.#node.libp2p.dialProtocol(peerIdFromString(to), SWIM_PROTOCOL, {
        signal: AbortSignal.timeout(5_000),
      });
      const lp = lpStream(stream, { maxDataLength: MAX_SWIM_BYTES });
      entry.stream = stream;
      // Writes keep their order on one stream; a failure ends it and the next send opens another.
      let chain = Promise.resolve();
      entry.write = (bytes) => {
        chain = chain.then(() => lp.write(bytes)).catch(() => this.#closeOut(to, entry));
      };
      entry.written = () => chain;
      for (const m of entry.queue.splice(0)) entry.write(encode(m));
    })().catch((err) => {
      if (this.#out.get(to) === entry) this.#out.delete(to);
      const refused = connectionRefused(err);
      for (const m of entry.queue.splice(0)) this.#swim?.sendFailed(to, m, refused);
    });
  }

  #closeOut(peer: string, entry = this.#out.get(peer)): void {
    if (!entry || this.#out.get(peer) !== entry) return;
    this.#out.delete(peer);
    entry.stream?.abort(new Error("membership stream closed"));
  }

  async #read(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: MAX_SWIM_BYTES });
    try {
      while (!this.#stopped) {
        const frame = await lp.read();
        let msg: SwimMessage;
        try {
          msg = decode(frame.subarray(), SwimMessageSchema, {
            what: SWIM_PROTOCOL,
            maxBytes: MAX_SWIM_BYTES,
          });
        } catch (err) {
          this.#node.malformed(SWIM_PROTOCOL, err);
          continue;
        }
        this.#swim?.receive(from, msg);
      }
    } catch {
      // The stream ended (peer closed, connection dropped, or a frame over the limit).
    }
    stream.abort(new Error("membership stream ended"));
  }

  /** A light peer asks: the view, then every membership event, until either side closes. */
  #serveWatch(stream: Stream): void {
    const lp = lpStream(stream, { maxDataLength: MAX_SWIM_BYTES });
    let chain = lp.write(encode({ members: this.members() }));
    const w = (e: MembershipEvent) => {
      chain = chain.then(() => lp.write(encode(e))).catch(() => {
        this.#watchers.delete(w);
        stream.abort(new Error("watcher gone"));
      });
    };
    this.#watchers.add(w);
    void (async () => {
      try {
        for await (const _ of stream) { /* a watcher sends nothing; the loop ends when it closes */ }
      } catch { /* closed */ }
      this.#watchers.delete(w);
    })();
  }

  /**
   * Light peers: follows the first connected agent that serves its view. When that agent goes away, follows
   * another member of the last view it gave, and reports what changed meanwhile.
   */
  async #follow(gone?: string): Promise<void> {
    const previous = gone === undefined ? undefined : new Map(this.#lightView.map((m) => [m.id, m]));
    const others = this.#lightView.filter((m) =>
      m.id !== gone && (m.state === "alive" || m.state === "suspect")
    );
    const candidates = [
      ...new Set([...this.#node.connectedPeers().filter((p) => p !== gone), ...others.map((m) => m.id)]),
    ];
    for (const peer of candidates) {
      if (this.#stopped) return;
      try {
        const id = peerIdFromString(peer);
        const addrs = others.find((m) => m.id === peer)?.addrs ?? [];
        if (addrs.length && this.#node.libp2p.getConnections(id).length === 0) {
          await this.#node.libp2p.peerStore.merge(id, { multiaddrs: addrs.map((a) => multiaddr(a)) });
        }
        const stream = await this.#node.libp2p.dialProtocol(id, VIEW_WATCH_PROTOCOL, {
          signal: AbortSignal.timeout(5_000),
        });
        const lp = lpStream(stream, { maxDataLength: MAX_SWIM_BYTES });
        const first = decode((await lp.read()).subarray(), v.object({ members: v.array(v.any()) }), {
          what: VIEW_WATCH_PROTOCOL,
          maxBytes: MAX_SWIM_BYTES,
        });
        this.#lightView = first.members as Member[];
        // What the followed agent knows now is news to this peer (on a first follow, as it would be to a member
        // joining); it goes out once the caller had a chance to listen (right after `start()` resolves).
        const at = Date.now();
        const news: MembershipEvent[] = [];
        for (const m of this.#lightView) {
          const before = previous?.get(m.id);
          if (before?.state === m.state && before.startedAt === m.startedAt) continue;
          if (!before && m.state !== "alive" && m.state !== "suspect") continue;
          const type = !before || before.startedAt !== m.startedAt
            ? "agent:joined"
            : m.state === "alive"
            ? "agent:alive"
            : `agent:${m.state}` as const;
          news.push({ type, id: m.id, host: m.host, at });
        }
        setTimeout(() => {
          for (const e of news) this.events.emit(e);
        }, 0);
        void (async () => {
          try {
            while (!this.#stopped) {
              const e = decode((await lp.read()).subarray(), MembershipEventSchema, {
                what: VIEW_WATCH_PROTOCOL,
                maxBytes: MAX_SWIM_BYTES,
              });
              this.#lightView = this.#lightView.map((m) =>
                m.id === e.id
                  ? { ...m, state: e.type === "agent:joined" ? "alive" : e.type.slice(6) as Member["state"] }
                  : m
              );
              this.events.emit(e);
            }
          } catch { /* the agent went away or we stopped */ }
          if (!this.#stopped) void this.#follow(peer);
        })();
        this.#unfollow = () => stream.abort(new Error("stopped"));
        return;
      } catch { /* try the next agent */ }
    }
  }

  #unfollow: (() => void) | undefined;

  /** Stops the protocol; an agent tells its links that it leaves. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#unfollow?.();
    clearTimeout(this.#soon);
    const swim = this.#swim;
    if (swim) {
      swim.leave();
      this.#node.libp2p.removeEventListener("peer:connect", this.#onConnect);
      this.#node.libp2p.removeEventListener("peer:disconnect", this.#onDisconnect);
      // Let the leave messages reach the sockets before the node closes them (bounded: a stuck peer must
      // not hold up a shutdown).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...this.#out.values()].map((o) => o.written?.())),
        new Promise((r) => (timer = setTimeout(r, 500))),
      ]);
      clearTimeout(timer);
    }
    this.#stopped = true;
    for (const peer of [...this.#out.keys()]) this.#closeOut(peer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Creates and starts a membership view on `init.node`. */
export async function startMembership(init: MembershipInit): Promise<Membership> {
  const m = new Membership(init);
  await m.start();
  return m;
}

/**
 * Whether a failed dial was refused (the peer's port is closed: its process is gone), as opposed to timing
 * out or failing later (a loaded or cut-off peer). libp2p wraps the socket's error in its own, sometimes in
 * an AggregateError of one per address.
 */
export function connectionRefused(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== "object" || depth > 5) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (e.code === "ECONNREFUSED" || (typeof e.message === "string" && /ECONNREFUSED/.test(e.message))) {
    return true;
  }
  if (Array.isArray(e.errors) && e.errors.some((x) => connectionRefused(x, depth + 1))) return true;
  return connectionRefused(e.cause, depth + 1);
}

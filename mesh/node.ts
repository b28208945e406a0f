/**
 * The libp2p node of a shoal peer: TCP, pre-shared-key private network, Noise, Yamux, identify, ping and
 * gossipsub, tuned for many peers on one host (see NOTES-libp2p.md).
 *
 * @module
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { type GossipSub, gossipsub } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import { applyYamuxWindowRule } from "./_yamux_window.ts";
import { EventHub } from "./event_hub.ts";
import type { Connection, Libp2p, PrivateKey, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { type Ping, ping } from "@libp2p/ping";
import { preSharedKey } from "@libp2p/pnet";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import type * as v from "valibot";
import { decode, encode } from "./codec.ts";
import { ListenError } from "./errors.ts";
import { disarmMorticeChannel } from "./_mortice.ts";
import { skipRedundantMerges } from "./_peer_store_cache.ts";
import { noiseCrypto } from "./_noise_crypto.ts";

/** Gossip messages are capped at this size. */
export const MAX_GOSSIP_BYTES = 4 * 1024 * 1024;

/** Options for {@linkcode createMeshNode}. */
export interface MeshNodeInit {
  /** The mesh's pre-shared key (text form bytes). */
  swarmKey: Uint8Array;
  /** Stable identity; an ephemeral one is made when absent (light peers). */
  privateKey?: PrivateKey;
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0`. None for a light peer. */
  listen?: string[];
  /** Called with every malformed or oversized message dropped. */
  onMalformed?: (what: string, err: unknown) => void;
  /** Called when a reply could not be sent on a stream. */
  onStreamError?: (what: string, err: unknown) => void;
}

/** Counters a node keeps about what it dropped. */
export interface MeshCounters {
  malformed: number;
  streamErrors: number;
}

/** A started libp2p node with typed gossip and stream helpers. */
export class MeshNode implements AsyncDisposable {
  readonly libp2p: Libp2p<{ pubsub: GossipSub; ping: Ping }>;
  readonly counters: MeshCounters = { malformed: 0, streamErrors: 0 };
  /** Every gossip message this node publishes (its own, not those it forwards), with its payload size. */
  readonly published = new EventHub<{ topic: string; bytes: number }>();
  /** Request handlers by protocol, so that a peer can ask itself without a stream (see `rpc.ts`). */
  readonly localHandlers: Map<string, (body: unknown, from: string) => Promise<unknown>> = new Map();
  readonly #onMalformed: ((what: string, err: unknown) => void) | undefined;
  readonly #onStreamError: ((what: string, err: unknown) => void) | undefined;
  readonly #topicHandlers = new Map<
    string,
    Set<{ schema: v.GenericSchema; handler: (value: unknown, from: string) => void }>
  >();
  /** The addresses last written to the peer store, by peer: a write encodes the whole record under a lock. */
  readonly #storedAddrs = new Map<string, string>();
  #stopped = false;
  /**
   * Where a peer can be reached, as far as this node knows beyond libp2p's peer store (set by the membership:
   * the addresses members announce). With a bounded number of links most members were never dialled, and a
   * stream to one of them by peer ID needs its addresses.
   */
  addressesOf: ((peer: string) => readonly string[]) | undefined;

  constructor(libp2p: Libp2p<{ pubsub: GossipSub; ping: Ping }>, init: MeshNodeInit) {
    this.libp2p = libp2p;
    this.#onMalformed = init.onMalformed;
    this.#onStreamError = init.onStreamError;
    libp2p.services.pubsub.addEventListener("message", (evt) => {
      const msg = evt.detail;
      const handlers = this.#topicHandlers.get(msg.topic);
      if (!handlers) return;
      const from = msg.type === "signed" ? msg.from.toString() : "";
      // Several parts subscribe to the same topic with the same schema: a message is decoded once per schema.
      const decoded = new Map<v.GenericSchema, { value: unknown } | { err: unknown }>();
      for (const { schema, handler } of handlers) {
        let got = decoded.get(schema);
        if (!got) {
          try {
            got = { value: decode(msg.data, schema, { what: msg.topic, maxBytes: MAX_GOSSIP_BYTES }) };
          } catch (err) {
            this.malformed(msg.topic, err);
            got = { err };
          }
          decoded.set(schema, got);
        }
        if ("value" in got) handler(got.value, from);
      }
    });
  }

  /** This peer's ID as a string. */
  get peerId(): string {
    return this.libp2p.peerId.toString();
  }

  /** The addresses other peers can dial, each ending in `/p2p/<peerId>`. */
  addresses(): string[] {
    return this.libp2p.getMultiaddrs().map((a) => a.toString());
  }

  /** IDs of the peers this node is connected to. */
  connectedPeers(): string[] {
    return this.libp2p.getPeers().map((p) => p.toString());
  }

  /** Records a dropped message. */
  malformed(what: string, err: unknown): void {
    this.counters.malformed++;
    this.#onMalformed?.(what, err);
  }

  /** Records a stream that failed while we answered on it. */
  streamError(what: string, err: unknown): void {
    this.counters.streamErrors++;
    this.#onStreamError?.(what, err);
  }

  /** Publishes a value on a gossip topic (CBOR encoded). */
  async publish(topic: string, value: unknown): Promise<void> {
    if (this.#stopped) return;
    const data = encode(value);
    this.published.emit({ topic, bytes: data.byteLength });
    await this.libp2p.services.pubsub.publish(topic, data);
  }

  /**
   * Subscribes to a gossip topic. Messages that do not match `schema` are dropped and counted.
   * Returns a function that removes the handler.
   */
  subscribe<S extends v.GenericSchema>(
    topic: string,
    schema: S,
    handler: (value: v.InferOutput<S>, from: string) => void,
  ): () => void {
    let set = this.#topicHandlers.get(topic);
    if (!set) {
      set = new Set();
      this.#topicHandlers.set(topic, set);
      this.libp2p.services.pubsub.subscribe(topic);
    }
    const h = { schema, handler: handler as (value: unknown, from: string) => void };
    set.add(h);
    return () => {
      set.delete(h);
    };
  }

  /** Dials a multiaddr (which must include `/p2p/<id>`) or a known peer ID. */
  async dial(target: string, options: { signal?: AbortSignal } = {}): Promise<Connection> {
    const ma = target.startsWith("/") ? multiaddr(target) : peerIdFromString(target);
    return await this.libp2p.dial(ma, options);
  }

  /**
   * Round trip to `peer` by libp2p's ping protocol, in ms (dialling it if need be). Rejects when it does
   * not answer before `signal` aborts.
   */
  async ping(peer: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    return await this.libp2p.services.ping.ping(peerIdFromString(peer), options);
  }

  /** Opens a stream to `peer` (a peer ID, dialled at the addresses it is known by, or a multiaddr). */
  async openStream(
    peer: string,
    protocol: string,
    options: { signal?: AbortSignal; maxOutboundStreams?: number } = {},
  ): Promise<Stream> {
    if (peer.startsWith("/")) return await this.libp2p.dialProtocol(multiaddr(peer), protocol, options);
    const id = peerIdFromString(peer);
    if (this.libp2p.getConnections(id).length === 0) {
      await this.learnAddresses(peer, this.addressesOf?.(peer) ?? []);
    }
    return await this.libp2p.dialProtocol(id, protocol, options);
  }

  /** Puts `peer`'s addresses into the peer store, if they changed since the last time. */
  async learnAddresses(peer: string, addrs: readonly string[]): Promise<void> {
    const key = addrs.join(" ");
    if (addrs.length === 0 || this.#storedAddrs.get(peer) === key) return;
    await this.libp2p.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.map((a) => multiaddr(a)) });
    this.#storedAddrs.set(peer, key);
  }

  /** Stops the node: leaves gossip, closes connections and streams. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.libp2p.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A cheap key of a received message (its origin and sequence number) to drop duplicates unverified. */
function fastMessageId(msg: { from?: Uint8Array; seqno?: Uint8Array; data?: Uint8Array }): string {
  const from = msg.from ?? new Uint8Array();
  const seqno = msg.seqno ?? new Uint8Array();
  let id = "";
  for (const b of from) id += String.fromCharCode(b);
  id += "\0";
  for (const b of seqno) id += String.fromCharCode(b);
  return id;
}

/** Creates and starts a mesh node. */
export async function createMeshNode(init: MeshNodeInit): Promise<MeshNode> {
  disarmMorticeChannel();
  applyYamuxWindowRule();
  const listen = init.listen ?? [];
  const loopbackSet = new Set(["127.0.0.1"]);
  let libp2p: Libp2p<{ pubsub: GossipSub; ping: Ping }>;
  try {
    libp2p = await createLibp2p({
      ...(init.privateKey ? { privateKey: init.privateKey } : {}),
      addresses: { listen },
      transports: [tcp()],
      connectionProtector: preSharedKey({ psk: init.swarmKey }),
      connectionEncrypters: [noise({ crypto: noiseCrypto })],
      // No keep-alive pings: each side pinged every connection every 30 s, O(links) messages per agent, while
      // the membership protocol probes the links anyway and finds a dead one.
      streamMuxers: [yamux({
        maxEarlyStreams: 256,
        enableKeepAlive: false,
        streamOptions: { inactivityTimeout: 30 * 60_000 },
      })],
      // Agents keep a bounded number of links themselves (membership.ts); this cap is only a backstop
      // against light peers (each CLI run is one connection).
      connectionManager: {
        maxConnections: 256,
        inboundConnectionThreshold: 10_000,
        maxIncomingPendingConnections: 1024,
        maxParallelDials: 256,
      },
      // The membership protocol probes linked peers; a per-connection ping would cost O(links) more.
      connectionMonitor: { enabled: false },
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          allowPublishToZeroTopicPeers: true,
          // Tags tell libp2p's connection manager which connections to keep when it prunes; agents keep
          // their links themselves (membership.ts), and each graft and prune was a peer-store write.
          tagMeshPeers: false,
          ignoreDuplicatePublishError: true,
          emitSelf: false,
          // Messages travel along each topic's mesh (degree D = 6): flooding every publish to every
          // connected peer made each agent's cost grow with the mesh.
          floodPublish: false,
          heartbeatInterval: 1_000,
          // Message IDs are remembered (three caches) for this long. A copy can come back only from a peer's
          // message cache, which holds 5 heartbeats (5 s); the default of 2 min held ~720 IDs per message/s
          // of traffic — under a command flood, the bulk of an agent's growth.
          seenTTL: 30_000,
          // A message can still reach an agent more than once (mesh forwarding, IWANT). Without a fast ID,
          // gossipsub verifies the signature of every copy before it finds it is a duplicate.
          fastMsgIdFn: fastMessageId,
          maxInboundDataLength: MAX_GOSSIP_BYTES,
          // Peers of a private mesh share its key; scores matter little, so they decay every 10 s, not 1 s
          // (one timer less per second on every agent).
          scoreParams: {
            IPColocationFactorWeight: 0,
            IPColocationFactorWhitelist: loopbackSet,
            decayInterval: 10_000,
          },
        }),
      },
    });
  } catch (cause) {
    const err = cause as Error & { code?: string };
    if (/EADDRINUSE|address already in use/i.test(String(err?.message ?? err))) {
      throw new ListenError(listen.join(", "), "the port is already in use; choose another with --listen", {
        cause,
      });
    }
    throw cause;
  }
  // Most of libp2p's peer-store writes change nothing (a protocol merged on every stream): skip those.
  skipRedundantMerges(libp2p.peerStore);
  return new MeshNode(libp2p, init);
}

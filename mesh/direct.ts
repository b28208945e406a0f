/**
 * One-way messages to one peer, the unicast counterpart of a gossip topic: a long-lived outbound stream per
 * peer and protocol, opened on the first message and reopened after a failure. Messages queued while a
 * frame is being written go out together in the next one (one length-prefixed CBOR array per frame), so a
 * burst costs a few frames, and a quiet link costs nothing. Each message read is schema-checked on its
 * own: a malformed one is counted and skipped, never the frame around it.
 *
 * Delivery is as a stream's: in order, at most once. `send` resolves once its frame is written and rejects
 * when the stream could not be opened or written, so a caller can fall back (to gossip) for what it knows
 * was not sent. A message to this peer itself is handed to the handler without a stream.
 *
 * A new stream per message (`request()` in `rpc.ts`) is ≈ 1k round trips/s between two peers; one
 * long-lived stream is ≈ 10k messages/s (NOTES-libp2p.md), which hot paths such as custom commands need.
 *
 * @module
 */
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";
import * as v from "valibot";
import { check, decode, DEFAULT_MAX_MESSAGE_BYTES, encode } from "./codec.ts";
import type { MeshNode } from "./node.ts";

/** Options for {@linkcode startDirect}. */
export interface DirectInit<S extends v.GenericSchema> {
  node: MeshNode;
  protocol: string;
  /** Schema of one message. */
  schema: S;
  /** Handles each message received; leave it out on a peer that only sends (a tool). */
  onMessage?: (message: v.InferOutput<S>, from: string) => void;
  /** Largest frame read or written, in bytes (default 4 MiB); one message must fit. */
  maxFrameBytes?: number;
  /** Size estimate of a message, to cut frames (default: its CBOR size). */
  sizeOf?: (message: v.InferOutput<S>) => number;
  /** How long opening a stream may take (default 5 s). */
  openTimeoutMs?: number;
}

interface Queued<T> {
  message: T;
  size: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Outbound<T> {
  queue: Queued<T>[];
  stream?: Stream;
  write?: (bytes: Uint8Array) => Promise<void>;
  pumping: boolean;
}

/** Sending and receiving one protocol's direct messages on one node. */
export class Direct<S extends v.GenericSchema> implements AsyncDisposable {
  readonly #init: DirectInit<S>;
  readonly #maxFrame: number;
  readonly #out = new Map<string, Outbound<v.InferOutput<S>>>();
  readonly #in = new Set<Stream>();
  #stopped = false;

  constructor(init: DirectInit<S>) {
    this.#init = init;
    this.#maxFrame = init.maxFrameBytes ?? 4 * DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** Serves the protocol (only when there is a handler). */
  async start(): Promise<void> {
    if (!this.#init.onMessage) return;
    await this.#init.node.libp2p.handle(this.#init.protocol, (stream, connection) => {
      void this.#read(stream, connection.remotePeer.toString());
    }, { maxInboundStreams: 1024 });
  }

  /**
   * Sends `message` to `peer`. Resolves once written to the peer's stream (or handed to this node's own
   * handler); rejects when it could not be, after which nothing of it reached the peer through here.
   */
  send(peer: string, message: v.InferOutput<S>): Promise<void> {
    if (this.#stopped) return Promise.reject(new Error(`${this.#init.protocol}: stopped`));
    if (peer === this.#init.node.peerId) {
      const handler = this.#init.onMessage;
      if (!handler) return Promise.reject(new Error(`${this.#init.protocol}: this peer receives nothing`));
      queueMicrotask(() => handler(message, peer));
      return Promise.resolve();
    }
    const size = this.#init.sizeOf?.(message) ?? encode(message).byteLength;
    if (size > this.#maxFrame / 2) {
      return Promise.reject(new RangeError(`Message of ${size} bytes exceeds ${this.#maxFrame / 2}`));
    }
    let out = this.#out.get(peer);
    if (!out) {
      out = { queue: [], pumping: false };
      this.#out.set(peer, out);
    }
    const entry = out;
    const sent = new Promise<void>((resolve, reject) => entry.queue.push({ message, size, resolve, reject }));
    if (!entry.pumping) {
      entry.pumping = true;
      // On the next turn, so that whatever else this turn sends goes in the same frame.
      setTimeout(() => void this.#pump(peer, entry), 0);
    }
    return sent;
  }

  async #pump(peer: string, out: Outbound<v.InferOutput<S>>): Promise<void> {
    while (out.queue.length > 0 && !this.#stopped) {
      const batch: Queued<v.InferOutput<S>>[] = [];
      let bytes = 0;
      while (
        out.queue.length > 0 && (batch.length === 0 || bytes + out.queue[0]!.size <= this.#maxFrame / 2)
      ) {
        const q = out.queue.shift()!;
        bytes += q.size;
        batch.push(q);
      }
      try {
        if (!out.write) await this.#open(peer, out);
        await out.write!(encode(batch.map((q) => q.message)));
        for (const q of batch) q.resolve();
      } catch (err) {
        // This frame and everything queued behind it fail together; the next send opens a new stream.
        this.#init.node.streamError(this.#init.protocol, err);
        out.stream?.abort(err instanceof Error ? err : new Error(String(err)));
        if (this.#out.get(peer) === out) this.#out.delete(peer);
        for (const q of [...batch, ...out.queue.splice(0)]) q.reject(err);
        break;
      }
    }
    out.pumping = false;
    if (this.#stopped) {
      for (const q of out.queue.splice(0)) q.reject(new Error(`${this.#init.protocol}: stopped`));
    }
  }

  async #open(peer: string, out: Outbound<v.InferOutput<S>>): Promise<void> {
    const stream = await this.#init.node.openStream(peer, this.#init.protocol, {
      signal: AbortSignal.timeout(this.#init.openTimeoutMs ?? 5_000),
    });
    const lp = lpStream(stream, { maxDataLength: this.#maxFrame });
    out.stream = stream;
    out.write = (bytes) => lp.write(bytes);
    // The peer never writes back; the read ends when it closes or the connection drops.
    void (async () => {
      try {
        for await (const _ of stream) { /* nothing is expected */ }
      } catch { /* reset */ }
      if (this.#out.get(peer) === out && !out.pumping) this.#out.delete(peer);
      out.write = undefined;
    })();
  }

  async #read(stream: Stream, from: string): Promise<void> {
    const { protocol, schema, node } = this.#init;
    const handler = this.#init.onMessage!;
    this.#in.add(stream);
    const lp = lpStream(stream, { maxDataLength: this.#maxFrame });
    try {
      while (!this.#stopped) {
        const frame = await lp.read();
        let items: unknown[];
        try {
          items = decode(frame.subarray(), v.array(v.unknown()), {
            what: protocol,
            maxBytes: this.#maxFrame,
          });
        } catch (err) {
          node.malformed(protocol, err);
          continue;
        }
        for (const item of items) {
          let message: v.InferOutput<S>;
          try {
            message = check(item, schema, protocol);
          } catch (err) {
            node.malformed(protocol, err);
            continue;
          }
          handler(message, from);
        }
      }
    } catch {
      // The stream ended: the peer closed it, the connection dropped, or a frame was over the limit.
    }
    this.#in.delete(stream);
    stream.abort(new Error(`${protocol} stream ended`));
  }

  /** Closes every stream and stops serving. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // Stopping: a node already stopped has no handlers left to remove.
    if (this.#init.onMessage) await this.#init.node.libp2p.unhandle(this.#init.protocol).catch(() => {});
    for (const [peer, out] of this.#out) {
      this.#out.delete(peer);
      for (const q of out.queue.splice(0)) q.reject(new Error(`${this.#init.protocol}: stopped`));
      await out.stream?.close().catch(() => out.stream?.abort(new Error("stopped")));
    }
    for (const s of this.#in) s.abort(new Error(`${this.#init.protocol}: stopped`));
    this.#in.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Creates a {@linkcode Direct} and starts serving its protocol. */
export async function startDirect<S extends v.GenericSchema>(init: DirectInit<S>): Promise<Direct<S>> {
  const direct = new Direct(init);
  await direct.start();
  return direct;
}

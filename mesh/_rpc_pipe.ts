/**
 * Requests over one long-lived stream per peer (the pipe), for `rpc.ts`: a new libp2p stream per request
 * costs a stream open, a protocol negotiation and a close on both sides — about 1k round trips a second
 * between two peers here, most of an agent's CPU in a flood of commands. On the pipe, requests and
 * responses are items in length-prefixed CBOR frames, each tagged with a number; whatever is queued while a
 * frame is written goes out in the next, and responses come back in the order their handlers finish.
 *
 * Each item carries its request's or response's own CBOR bytes, so that every protocol keeps its own size
 * limit and schema check, and a malformed item fails alone. Bulk stays off the pipe, so that it holds
 * nothing else up and keeps a stream's own flow control: a request body above
 * {@linkcode PIPE_MAX_REQUEST_BYTES} goes on a stream of its own (`rpc.ts`), and a response above
 * {@linkcode BULK_RESPONSE_BYTES} comes back on a stream the server opens to the requester
 * ({@linkcode PIPE_BULK_PROTOCOL}; inline when the requester does not serve it). A peer that does not serve
 * the pipe, or not the protocol through it, gets the request on a stream of its own.
 *
 * @module
 */
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";
import * as v from "valibot";
import { decode, encode } from "./codec.ts";
import type { MeshNode } from "./node.ts";

/** The pipe's protocol. */
export const PIPE_PROTOCOL = "/shoal/rpc/pipe/1.0.0";
/** Responses too large for the pipe, on a stream of their own: a header frame `{i}`, then the bytes. */
export const PIPE_BULK_PROTOCOL = "/shoal/rpc/pipe/bulk/1.0.0";
/** Largest request body sent through the pipe. */
export const PIPE_MAX_REQUEST_BYTES = 256 * 1024;
/** Larger responses come back on a stream of their own. */
export const BULK_RESPONSE_BYTES = 64 * 1024;
/** Largest frame on the pipe (one inline response, when the requester takes no bulk streams, fits). */
const MAX_FRAME_BYTES = 16 * 1024 * 1024 + 64 * 1024;
/** Largest response on a bulk stream (each request's own limit is checked when it is decoded). */
const MAX_BULK_BYTES = 256 * 1024 * 1024 + 64 * 1024;
/** Frames are cut at this size, unless one item alone is larger. */
const CUT_FRAME_BYTES = 512 * 1024;
/** Requests a peer may have in flight on one pipe. */
const MAX_IN_FLIGHT = 4096;

const Bytes = v.custom<Uint8Array>((x) => x instanceof Uint8Array, "expected bytes");
const RequestItem = v.object({ i: v.number(), p: v.pipe(v.string(), v.maxLength(256)), b: Bytes });
/** A response: the CBOR of `{ok, value | error}` (`r`), or `u` when the protocol is not served here. */
const ResponseItem = v.object({ i: v.number(), r: v.optional(Bytes), u: v.optional(v.boolean()) });
const Frame = v.array(v.unknown());

/** One protocol as the pipe serves it. */
export interface PipeServed {
  /** Decodes and checks the body, runs the handler; resolves to the encoded `{ok, …}` response. */
  answer(body: Uint8Array, from: string): Promise<Uint8Array>;
}

/** The request went nowhere: the peer does not serve the pipe or the protocol through it. */
export class PipeUnsupported extends Error {
  constructor(peer: string, what: string) {
    super(`${peer} does not serve ${what} through the pipe`);
    this.name = "PipeUnsupported";
  }
}

/** Writes items in frames: those queued while a frame is written go in the next one. */
class FrameWriter {
  readonly #write: (bytes: Uint8Array) => Promise<void>;
  readonly #onError: (err: unknown) => void;
  #queue: { item: unknown; size: number }[] = [];
  #busy = false;

  constructor(write: (bytes: Uint8Array) => Promise<void>, onError: (err: unknown) => void) {
    this.#write = write;
    this.#onError = onError;
  }

  push(item: unknown, size: number): void {
    this.#queue.push({ item, size });
    if (this.#busy) return;
    this.#busy = true;
    // On the next turn, so that whatever else this turn queues goes in the same frame.
    setTimeout(() => void this.#pump(), 0);
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const frame: unknown[] = [];
        let bytes = 0;
        while (
          this.#queue.length > 0 && (frame.length === 0 || bytes + this.#queue[0]!.size <= CUT_FRAME_BYTES)
        ) {
          const q = this.#queue.shift()!;
          frame.push(q.item);
          bytes += q.size;
        }
        await this.#write(encode(frame));
      }
    } catch (err) {
      this.#queue = [];
      this.#onError(err);
    } finally {
      this.#busy = false;
    }
  }
}

/** By libp2p node, not by `MeshNode`: a protocol can be handled once per libp2p node. */
const served = new WeakMap<object, Map<string, PipeServed>>();

/**
 * Serves `protocol` through `node`'s pipe as well (starting to serve the pipe on the first call).
 */
export async function servePipe(node: MeshNode, protocol: string, answer: PipeServed): Promise<void> {
  let table = served.get(node.libp2p);
  if (!table) {
    table = new Map();
    served.set(node.libp2p, table);
    const protocols = table;
    await node.libp2p.handle(PIPE_PROTOCOL, (stream, connection) => {
      void serveStream(node, protocols, stream, connection.remotePeer.toString());
    }, { maxInboundStreams: 64 });
  }
  table.set(protocol, answer);
}

async function serveStream(
  node: MeshNode,
  protocols: Map<string, PipeServed>,
  stream: Stream,
  from: string,
): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  const out = new FrameWriter((b) => lp.write(b), (err) => {
    node.streamError(PIPE_PROTOCOL, err);
    stream.abort(err instanceof Error ? err : new Error(String(err)));
  });
  let inFlight = 0;
  const respond = async (item: v.InferOutput<typeof RequestItem>) => {
    const p = protocols.get(item.p);
    if (!p) return out.push({ i: item.i, u: true }, 16);
    if (inFlight >= MAX_IN_FLIGHT) {
      const r = encode({
        ok: false,
        error: { name: "RangeError", message: `More than ${MAX_IN_FLIGHT} requests in flight on one pipe` },
      });
      return out.push({ i: item.i, r }, r.byteLength + 16);
    }
    inFlight++;
    try {
      const r = await p.answer(item.b, from);
      if (r.byteLength <= BULK_RESPONSE_BYTES || !(await sendBulk(node, from, item.i, r))) {
        out.push({ i: item.i, r }, r.byteLength + 16);
      }
    } finally {
      inFlight--;
    }
  };
  try {
    for (;;) {
      const frame = await lp.read();
      let items: unknown[];
      try {
        items = decode(frame.subarray(), Frame, { what: PIPE_PROTOCOL, maxBytes: MAX_FRAME_BYTES });
      } catch (err) {
        node.malformed(PIPE_PROTOCOL, err);
        continue;
      }
      for (const raw of items) {
        const parsed = v.safeParse(RequestItem, raw);
        if (!parsed.success) {
          node.malformed(PIPE_PROTOCOL, new Error(parsed.issues[0]?.message ?? "malformed request item"));
          continue;
        }
        void respond(parsed.output);
      }
    }
  } catch {
    // The stream ended: the peer closed it, the connection dropped, or a frame was over the limit.
  }
  stream.abort(new Error(`${PIPE_PROTOCOL} stream ended`));
}

/** Sends a large response on a stream of its own; false when the requester takes none (then inline). */
async function sendBulk(node: MeshNode, to: string, i: number, r: Uint8Array): Promise<boolean> {
  let stream: Stream;
  try {
    stream = await node.openStream(to, PIPE_BULK_PROTOCOL, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    if ((err as Error).name === "UnsupportedProtocolError") return false;
    node.streamError(PIPE_BULK_PROTOCOL, err);
    return true; // the requester is unreachable: its request times out there
  }
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_BULK_BYTES });
    await lp.write(encode({ i }));
    await lp.write(r);
    await stream.close();
  } catch (err) {
    node.streamError(PIPE_BULK_PROTOCOL, err);
    stream.abort(err instanceof Error ? err : new Error(String(err)));
  }
  return true;
}

interface Waiter {
  /** The peer asked: only it may answer. */
  peer: string;
  resolve: (response: Uint8Array) => void;
  reject: (err: unknown) => void;
}

/** The requesting side of one pipe to one peer; the waiters are the node's (bulk responses find them). */
class PipeClient {
  readonly #all: Pipes;
  readonly #mine = new Set<number>();
  readonly #out: FrameWriter;
  readonly #stream: Stream;
  readonly #peer: string;
  closed = false;

  constructor(all: Pipes, stream: Stream, peer: string, onClose: () => void) {
    this.#all = all;
    this.#stream = stream;
    this.#peer = peer;
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    const close = (err: unknown) => {
      if (this.closed) return;
      this.closed = true;
      onClose();
      const e = err instanceof Error ? err : new Error(String(err));
      // Each its own error: a caller prefixes the message with its protocol.
      for (const i of this.#mine) {
        all.waiters.get(i)?.reject(Object.assign(new Error(e.message, { cause: e }), { name: e.name }));
      }
      this.#mine.clear();
      stream.abort(e);
    };
    this.#out = new FrameWriter((b) => lp.write(b), close);
    void (async () => {
      try {
        for (;;) {
          const frame = await lp.read();
          for (
            const raw of decode(frame.subarray(), Frame, { what: PIPE_PROTOCOL, maxBytes: MAX_FRAME_BYTES })
          ) {
            const item = v.parse(ResponseItem, raw);
            if (!this.#mine.has(item.i)) continue; // it timed out here
            const w = all.waiters.get(item.i)!;
            if (item.r) w.resolve(item.r);
            else w.reject(new PipeUnsupported(peer, "this protocol"));
          }
        }
      } catch (err) {
        close(
          err instanceof Error && /ended|closed|reset/i.test(err.message)
            ? new Error(`stream ${err.message}`)
            : err,
        );
      }
    })();
  }

  /** Sends one request; resolves to its encoded response. */
  call(protocol: string, body: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error("stream closed"));
    signal.throwIfAborted();
    const i = this.#all.next++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const done = () => {
        signal.removeEventListener("abort", onAbort);
        this.#all.waiters.delete(i);
        this.#mine.delete(i);
      };
      const onAbort = () => (done(), reject(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      this.#all.waiters.set(i, {
        peer: this.#peer,
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      });
      this.#mine.add(i);
      this.#out.push({ i, p: protocol, b: body }, body.byteLength + protocol.length + 16);
    });
  }

  close(): void {
    // Pending requests were failed already; a close that fails means the connection went first.
    this.#stream.close().catch(() => {});
  }
}

interface Pipes {
  open: Map<string, Promise<PipeClient>>;
  /** Peers found not to serve the pipe. */
  without: Set<string>;
  /** Requests awaiting their responses, by number (unique on this node). */
  waiters: Map<number, Waiter>;
  next: number;
  /** Serving {@linkcode PIPE_BULK_PROTOCOL}, from the first request on. */
  bulk: Promise<void>;
}
const pipes = new WeakMap<object, Pipes>();

function pipesOf(node: MeshNode): Pipes {
  let p = pipes.get(node.libp2p);
  if (!p) {
    const waiters = new Map<number, Waiter>();
    p = {
      open: new Map(),
      without: new Set(),
      waiters,
      next: 0,
      // Should it fail, servers answer inline instead (they find the protocol unsupported here).
      bulk: node.libp2p.handle(PIPE_BULK_PROTOCOL, (stream, connection) => {
        void readBulk(node, waiters, stream, connection.remotePeer.toString());
      }, { maxInboundStreams: 1024 }).catch((err) => node.streamError(PIPE_BULK_PROTOCOL, err)),
    };
    pipes.set(node.libp2p, p);
  }
  return p;
}

/** A large response on a stream of its own: its number, then its bytes, for the request sent to `from`. */
async function readBulk(node: MeshNode, waiters: Map<number, Waiter>, stream: Stream, from: string) {
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_BULK_BYTES });
    const { i } = decode((await lp.read()).subarray(), v.object({ i: v.number() }), {
      what: PIPE_BULK_PROTOCOL,
    });
    const bytes = (await lp.read()).subarray();
    const w = waiters.get(i);
    if (w && w.peer === from) w.resolve(bytes);
    await stream.close();
  } catch (err) {
    node.streamError(PIPE_BULK_PROTOCOL, err);
    stream.abort(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * Sends one request to `peer` through its pipe (opened on the first); resolves to the encoded response.
 *
 * @throws {PipeUnsupported} when the peer does not serve the pipe or the protocol through it; the caller
 *   sends the request on a stream of its own then
 */
export async function callPipe(
  node: MeshNode,
  peer: string,
  protocol: string,
  body: Uint8Array,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const key = peer.split("/p2p/").pop()!;
  const all = pipesOf(node);
  if (all.without.has(key)) throw new PipeUnsupported(key, PIPE_PROTOCOL);
  await all.bulk;
  let opening = all.open.get(key);
  if (!opening) {
    opening = (async () => {
      let stream: Stream;
      try {
        // Not the caller's signal: others may be waiting for the same pipe.
        stream = await node.openStream(peer, PIPE_PROTOCOL, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        if ((err as Error).name === "UnsupportedProtocolError") {
          all.without.add(key);
          throw new PipeUnsupported(key, PIPE_PROTOCOL);
        }
        throw err;
      }
      return new PipeClient(all, stream, key, () => {
        if (all.open.get(key) === opening) all.open.delete(key);
      });
    })();
    all.open.set(key, opening);
    opening.catch(() => {
      if (all.open.get(key) === opening) all.open.delete(key);
    });
  }
  const pipe = await untilAborted(opening, signal);
  return await pipe.call(protocol, body, signal);
}

/** `p`, or the signal's reason once it aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (x) => (signal.removeEventListener("abort", onAbort), resolve(x)),
      (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}

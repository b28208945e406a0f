/**
 * Request/response over libp2p streams: one length-prefixed CBOR frame each way, with a size limit and a
 * schema check on everything read from the wire.
 *
 * @module
 */
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";
import * as v from "valibot";
import { check, decode, DEFAULT_MAX_MESSAGE_BYTES, encode } from "./codec.ts";
import { RemoteError } from "./errors.ts";
import type { MeshNode } from "./node.ts";
import { callPipe, PIPE_MAX_REQUEST_BYTES, PipeUnsupported, servePipe } from "./_rpc_pipe.ts";

const DEFAULT_TIMEOUT_MS = 10_000;

const ResponseSchema = v.variant("ok", [
  v.object({ ok: v.literal(true), value: v.unknown() }),
  v.object({ ok: v.literal(false), error: v.object({ name: v.string(), message: v.string() }) }),
]);

/** A request handler: gets the checked request and the caller's peer ID, returns the response value. */
export type RequestHandler<Req, Res> = (request: Req, from: string) => Promise<Res> | Res;

/** Options for {@linkcode handleRequests}. */
export interface HandleOptions<S extends v.GenericSchema, Res> {
  /** Schema that every request must match. */
  schema: S;
  handler: RequestHandler<v.InferOutput<S>, Res>;
  /** Maximum request size in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Maximum response size in bytes (default 16 MiB). */
  maxResponseBytes?: number;
}

/**
 * Serves `protocol` on `node`. A malformed or oversized request is counted and its stream reset; the
 * handler's errors go back to the caller as `RemoteError`s.
 */
export async function handleRequests<S extends v.GenericSchema, Res>(
  node: MeshNode,
  protocol: string,
  options: HandleOptions<S, Res>,
): Promise<void> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const maxResponseBytes = options.maxResponseBytes ?? 16 * DEFAULT_MAX_MESSAGE_BYTES;
  node.localHandlers.set(protocol, async (body, from) => {
    const req = check(body, options.schema, protocol);
    return await options.handler(req, from);
  });
  // The same through the pipe (`_rpc_pipe.ts`): one item's bytes each way, with the same limits and checks.
  await servePipe(node, protocol, {
    async answer(body, from) {
      let reply: unknown;
      try {
        const request = decode(body, options.schema, { what: protocol, maxBytes });
        reply = { ok: true, value: await options.handler(request, from) };
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        if (e.name === "MalformedMessageError" || e.name === "MessageTooLargeError") {
          node.malformed(protocol, e);
        }
        reply = { ok: false, error: { name: e.name, message: e.message } };
      }
      const bytes = encode(reply);
      if (bytes.byteLength <= maxResponseBytes) return bytes;
      const e = new RangeError(`Response of ${bytes.byteLength} bytes exceeds ${maxResponseBytes}`);
      node.streamError(protocol, e);
      return encode({ ok: false, error: { name: e.name, message: e.message } });
    },
  });
  await node.libp2p.handle(protocol, async (stream, connection) => {
    const from = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: maxBytes });
    let request: v.InferOutput<S>;
    try {
      const frame = await lp.read({ signal: AbortSignal.timeout(DEFAULT_TIMEOUT_MS) });
      request = decode(frame.subarray(), options.schema, { what: protocol, maxBytes });
    } catch (err) {
      // A request that never came (the caller went away or was too slow) is not a malformed one.
      const e = err instanceof Error ? err : new Error(String(err));
      if (
        e.name === "TimeoutError" || e.name === "AbortError" || /stream (reset|closed)|ended/i.test(e.message)
      ) {
        node.streamError(protocol, e);
      } else node.malformed(protocol, err);
      stream.abort(e);
      return;
    }
    let reply: unknown;
    try {
      reply = { ok: true, value: await options.handler(request, from) };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      reply = { ok: false, error: { name: e.name, message: e.message } };
    }
    try {
      const bytes = encode(reply);
      if (bytes.byteLength > maxResponseBytes) {
        throw new RangeError(`Response of ${bytes.byteLength} bytes exceeds ${maxResponseBytes}`);
      }
      await lp.write(bytes, { signal: AbortSignal.timeout(DEFAULT_TIMEOUT_MS) });
      await stream.close();
    } catch (err) {
      node.streamError(protocol, err);
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }, { maxInboundStreams: 1024, maxOutboundStreams: 1024 });
}

/** Options for {@linkcode request}. */
export interface RequestOptions<S extends v.GenericSchema> {
  /** Schema the response value must match. */
  schema: S;
  signal?: AbortSignal;
  /** Default 10 s. */
  timeoutMs?: number;
  /** Maximum response size in bytes (default 16 MiB). */
  maxBytes?: number;
}

/**
 * Sends one request to `peer` (a peer ID or a multiaddr with `/p2p/`) and returns its checked response.
 *
 * @throws {RemoteError} when the remote handler failed
 */
export async function request<S extends v.GenericSchema>(
  node: MeshNode,
  peer: string,
  protocol: string,
  body: unknown,
  options: RequestOptions<S>,
): Promise<v.InferOutput<S>> {
  if (peer === node.peerId || peer.endsWith(`/p2p/${node.peerId}`)) {
    return await requestSelf(node, protocol, body, options);
  }
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const maxBytes = options.maxBytes ?? 16 * DEFAULT_MAX_MESSAGE_BYTES;
  const bytes = encode(body);
  if (bytes.byteLength <= PIPE_MAX_REQUEST_BYTES) {
    let reply: v.InferOutput<typeof ResponseSchema> | undefined;
    try {
      reply = decode(await callPipe(node, peer, protocol, bytes, signal), ResponseSchema, {
        what: protocol,
        maxBytes,
      });
    } catch (err) {
      if (!(err instanceof PipeUnsupported)) throw named(err, protocol, peer);
    }
    if (reply) {
      if (!reply.ok) throw new RemoteError(peer, reply.error.name, reply.error.message);
      return check(reply.value, options.schema, protocol);
    }
  }
  // A peer that does not serve `protocol` itself (a tool) would be held to libp2p's default of 64 open
  // streams per protocol and connection: a tool waiting for many replies at once got "Too many outbound
  // protocol streams". The same bound as the serving side's inbound one.
  const stream: Stream = await node.openStream(peer, protocol, { signal, maxOutboundStreams: 1024 });
  try {
    const lp = lpStream(stream, { maxDataLength: maxBytes });
    await lp.write(bytes, { signal });
    const frame = await lp.read({ signal });
    const reply = decode(frame.subarray(), ResponseSchema, { what: protocol, maxBytes });
    if (!reply.ok) throw new RemoteError(peer, reply.error.name, reply.error.message);
    // The answer is in: a close that fails (the peer hung up first) loses nothing.
    await stream.close({ signal }).catch(() => {});
    return check(reply.value, options.schema, protocol);
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    throw named(err, protocol, peer);
  }
}

/** A failed request's error, its message prefixed with the protocol and peer (remote errors as they are). */
function named(err: unknown, protocol: string, peer: string): unknown {
  if (err instanceof RemoteError || !(err instanceof Error)) return err;
  const message = `${protocol} to ${peer.split("/").pop()}: ${err.message}`;
  try {
    err.message = message;
  } catch {
    // Bun's TimeoutError (a DOMException) has a read-only message: wrap it, keeping its name.
    const wrapped = new Error(message, { cause: err });
    wrapped.name = err.name;
    return wrapped;
  }
  return err;
}

/** A peer asking itself: the same encode, checks and errors as over the wire, without a stream. */
async function requestSelf<S extends v.GenericSchema>(
  node: MeshNode,
  protocol: string,
  body: unknown,
  options: RequestOptions<S>,
): Promise<v.InferOutput<S>> {
  const handler = node.localHandlers.get(protocol);
  if (!handler) {
    throw new RemoteError(node.peerId, "UnsupportedProtocolError", `This peer does not serve ${protocol}`);
  }
  let value: unknown;
  try {
    value = await handler(
      decode(encode(body), v.unknown(), { what: protocol, maxBytes: Infinity }),
      node.peerId,
    );
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    throw new RemoteError(node.peerId, e.name, e.message, { cause: err });
  }
  return check(
    decode(encode(value), v.unknown(), { what: protocol, maxBytes: Infinity }),
    options.schema,
    protocol,
  );
}

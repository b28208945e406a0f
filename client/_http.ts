/**
 * HTTP/1.1 over the agent's Unix socket, with `node:http` (works in Deno, Bun and Node).
 *
 * @module
 */
import { type IncomingMessage, request } from "node:http";
import { errorFor } from "./errors.ts";

/** Where and as whom to talk. */
export interface Endpoint {
  socket: string;
  token: string;
}

/** Sends one request; resolves with the response once its headers arrived, throwing on an error status. */
export function call(
  ep: Endpoint,
  method: string,
  path: string,
  options: { body?: Uint8Array | string; signal?: AbortSignal } = {},
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    const body = typeof options.body === "string" ? new TextEncoder().encode(options.body) : options.body;
    const req = request({
      socketPath: ep.socket,
      method,
      path,
      headers: {
        authorization: `Bearer ${ep.token}`,
        ...(body ? { "content-length": String(body.byteLength) } : {}),
      },
      ...(options.signal ? { signal: options.signal } : {}),
    }, (res) => {
      if ((res.statusCode ?? 500) < 300) return resolve(res);
      readAll(res).then((bytes) => {
        let err: { name?: string; message?: string } = {};
        try {
          err = (JSON.parse(new TextDecoder().decode(bytes)) as { error: typeof err }).error ?? {};
        } catch { /* not JSON */ }
        reject(
          errorFor(
            res.statusCode ?? 500,
            err.name ?? "TaskApiError",
            err.message ?? `HTTP ${res.statusCode}`,
          ),
        );
      }, reject);
    });
    req.on("error", (err) => reject(options.signal?.aborted ? options.signal.reason : err));
    req.end(body);
  });
}

/** Reads a whole response body. */
export async function readAll(res: IncomingMessage): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of res as AsyncIterable<Uint8Array>) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Sends a request and parses its JSON reply. */
export async function callJson<T>(
  ep: Endpoint,
  method: string,
  path: string,
  options: { body?: Uint8Array | string; signal?: AbortSignal } = {},
): Promise<T> {
  const res = await call(ep, method, path, options);
  return JSON.parse(new TextDecoder().decode(await readAll(res))) as T;
}

/** Parses an NDJSON response line by line until it ends or `signal` aborts. */
export async function* ndjson<T>(res: IncomingMessage, signal?: AbortSignal): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buf = "";
  const onAbort = () => res.destroy();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of res as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) yield JSON.parse(line) as T;
      }
    }
  } catch (err) {
    if (!signal?.aborted) throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    res.destroy();
  }
}

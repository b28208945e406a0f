/**
 * HTTP/1.1 over the agent's Unix socket: one request per connection (`Connection: close`), written and
 * read directly on a `node:net` socket (works in Deno, Bun and Node). The task API is the only server
 * this talks to, so the client needs only what that server sends: a status line, headers, and a body
 * delimited by `Content-Length`, by chunked transfer coding (NDJSON streams), or by the connection's end.
 * In a freshly started task this costs about half the CPU of `node:http`'s client, which matters when
 * hundreds of tasks wake at once to exchange key-values.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";
import { errorFor } from "./errors.ts";

/** Where and as whom to talk. */
export interface Endpoint {
  socket: string;
  token: string;
}

/** A response whose headers arrived; `body` yields the (de-chunked) body bytes once. */
export interface Response {
  status: number;
  headers: Map<string, string>;
  body: AsyncIterable<Uint8Array>;
  /** Closes the connection (ends `body`). */
  close(): void;
}

/** The largest response head accepted. */
const MAX_HEAD = 64 * 1024;
const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

/**
 * Buffered reads from a socket. Bytes are taken as they arrive, so a response the agent sent before a
 * write failed (it answers 413 and closes while a too-large body is still being sent) is read before the
 * write error surfaces.
 */
class Reader {
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;
  readonly #socket: Socket;

  constructor(socket: Socket) {
    this.#socket = socket;
    const wake = () => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    socket.on("data", (d: Buffer) => {
      this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
      if (this.#buf.length > 1024 * 1024) socket.pause();
      wake();
    });
    socket.on("error", (err) => {
      this.#error ??= err;
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
  }

  /** Waits for more bytes; false at the end of the stream (throws the socket's error if it failed). */
  async #fill(): Promise<boolean> {
    const had = this.#buf.length;
    this.#socket.resume();
    while (this.#buf.length === had) {
      if (this.#ended || this.#error !== undefined) {
        if (this.#error !== undefined) throw this.#error;
        return false;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    return true;
  }

  /** Bytes up to `delim` (consumed, not returned); undefined when the stream ends first. */
  async until(delim: Buffer, max: number): Promise<Uint8Array | undefined> {
    let from = 0;
    while (true) {
      const at = this.#buf.indexOf(delim, from);
      if (at >= 0) {
        const out = this.#buf.subarray(0, at);
        this.#buf = this.#buf.subarray(at + delim.length);
        return out;
      }
      if (this.#buf.length > max) {
        throw new Error(`Malformed response from the agent: no end within ${max} bytes`);
      }
      from = Math.max(0, this.#buf.length - delim.length + 1);
      if (!(await this.#fill())) return undefined;
    }
  }

  /** Exactly `n` bytes, yielded as they come. */
  async *exactly(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) {
        throw new Error(`The agent closed the connection ${left} byte(s) before the end of its response`);
      }
      const take = this.#buf.subarray(0, Math.min(left, this.#buf.length));
      this.#buf = this.#buf.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }

  /** Everything until the stream ends. */
  async *rest(): AsyncGenerator<Uint8Array> {
    while (true) {
      if (this.#buf.length > 0) {
        const out = this.#buf;
        this.#buf = Buffer.alloc(0);
        yield out;
      } else if (!(await this.#fill())) return;
    }
  }
}

async function* chunked(reader: Reader): AsyncGenerator<Uint8Array> {
  while (true) {
    const line = await reader.until(CRLF, 1024);
    if (line === undefined) {
      throw new Error("The agent closed the connection in the middle of a chunked response");
    }
    const size = parseInt(new TextDecoder().decode(line).split(";")[0]!.trim(), 16);
    if (!Number.isFinite(size) || size < 0) throw new Error("Malformed chunk size in the agent's response");
    if (size === 0) return;
    yield* reader.exactly(size);
    await reader.until(CRLF, 2);
  }
}

/** Sends one request; resolves with the response once its headers arrived, throwing on an error status. */
export async function call(
  ep: Endpoint,
  method: string,
  path: string,
  options: { body?: Uint8Array | string; signal?: AbortSignal } = {},
): Promise<Response> {
  const { signal } = options;
  signal?.throwIfAborted();
  const body = typeof options.body === "string" ? new TextEncoder().encode(options.body) : options.body;
  const socket = connect(ep.socket);
  const onAbort = () => socket.destroy(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  socket.once("close", () => signal?.removeEventListener("abort", onAbort));
  const head = `${method} ${path} HTTP/1.1\r\nHost: task\r\nAuthorization: Bearer ${ep.token}\r\n` +
    `Connection: close\r\nContent-Length: ${body?.byteLength ?? 0}\r\n\r\n`;
  // One write: a server that answers early (401) and closes must not see half a request.
  socket.write(body && body.byteLength > 0 ? Buffer.concat([Buffer.from(head), body]) : head);
  try {
    const reader = new Reader(socket);
    const raw = await reader.until(HEAD_END, MAX_HEAD);
    if (raw === undefined) throw new Error("The agent closed the connection before answering");
    const [statusLine, ...lines] = new TextDecoder().decode(raw).split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1]);
    if (!status) throw new Error(`Malformed status line from the agent: ${JSON.stringify(statusLine)}`);
    const headers = new Map<string, string>();
    for (const l of lines) {
      const colon = l.indexOf(":");
      if (colon > 0) headers.set(l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim());
    }
    const length = headers.get("content-length");
    const source = /chunked/i.test(headers.get("transfer-encoding") ?? "")
      ? chunked(reader)
      : length !== undefined
      ? reader.exactly(Number(length))
      : method === "HEAD" || status === 204 || status === 304
      ? reader.exactly(0)
      : reader.rest();
    const res: Response = {
      status,
      headers,
      body: (async function* () {
        try {
          yield* source;
        } catch (err) {
          throw signal?.aborted ? signal.reason : err;
        } finally {
          socket.destroy();
        }
      })(),
      close: () => socket.destroy(),
    };
    if (status < 300) return res;
    const bytes = await readAll(res);
    let err: { name?: string; message?: string } & Record<string, unknown> = {};
    try {
      err = (JSON.parse(new TextDecoder().decode(bytes)) as { error: typeof err }).error ?? {};
    } catch { /* not JSON */ }
    throw errorFor(status, err.name ?? "TaskApiError", err.message ?? `HTTP ${status}`, err);
  } catch (err) {
    socket.destroy();
    throw signal?.aborted ? signal.reason : err;
  }
}

/** Reads a whole response body. */
export async function readAll(res: Response): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of res.body) chunks.push(c);
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
export async function* ndjson<T>(res: Response, signal?: AbortSignal): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buf = "";
  const onAbort = () => res.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of res.body) {
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
    res.close();
  }
}

/**
 * Small HTTP helpers of the task API: JSON and NDJSON replies, bounded bodies, errors with a status.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** An error the task API answers with `status` and `{error: {name, message}}`. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, name: string, message: string) {
    super(message);
    this.name = name;
    this.status = status;
  }
}

/** Sends a JSON reply. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Sends an error reply. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e = err instanceof ApiError
    ? err
    : err instanceof RangeError
    ? new ApiError(400, "RangeError", err.message)
    : new ApiError(
      500,
      err instanceof Error ? err.name : "Error",
      err instanceof Error ? err.message : String(err),
    );
  sendJson(res, e.status, { error: { name: e.name, message: e.message } });
}

/** Reads a request body of at most `max` bytes (413 beyond). */
export async function readBody(req: IncomingMessage, max: number, what: string): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > max) throw tooLarge(declared, max, what);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) throw tooLarge(size, max, what);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function tooLarge(size: number, max: number, what: string): ApiError {
  return new ApiError(413, "ValueTooLargeError", `${what} of ${size} bytes exceeds the ${max}-byte limit`);
}

/** Starts an NDJSON stream; returns a writer that reports false once the client went away. */
export function startNdjson(res: ServerResponse): (value: unknown) => boolean {
  res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  res.flushHeaders();
  return (value) => {
    if (res.destroyed || res.writableEnded) return false;
    res.write(`${JSON.stringify(value)}\n`);
    return true;
  };
}

/** A non-negative integer query parameter, or `undefined`. */
export function intParam(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new ApiError(400, "RangeError", `Query parameter "${name}" must be an integer ≥ 0, not "${raw}"`);
  }
  return n;
}

/** A payload as JSON: base64 always, text too when it is valid UTF-8. */
export function payloadJson(payload: Uint8Array): { data: string; text?: string } {
  const data = Buffer.from(payload).toString("base64");
  try {
    return { data, text: new TextDecoder("utf-8", { fatal: true }).decode(payload) };
  } catch {
    return { data };
  }
}

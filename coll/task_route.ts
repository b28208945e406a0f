/**
 * The task API's collective routes, `POST /v1/coll/<op>/<name>` with the value as the body:
 *
 * - query: `group` (see `group.ts`), `reduce` (sum, min, max, concat), `root` (path or task ID),
 *   `fanout`, `timeout` (ms; 0 = none), and for a scatter's root `encoding=base64` when its body's JSON
 *   array holds base64 parts rather than text;
 * - 200 `{name, generation, op, size, data?, text?, values?: [{path, data, text?}]}` (data in base64,
 *   text when it is UTF-8);
 * - 409 `{error: {name: "CollectiveFailedError", message, generation, reason, missing, missingCount}}`,
 *   409 `CollectiveMismatchError`, 400 `CollectiveGroupError` or `RangeError`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { TaskRoute } from "../agent/task_api/mod.ts";
import { CollectiveFailedError, CollectiveGroupError, CollectiveMismatchError } from "./errors.ts";
import type { CollService } from "./service.ts";
import { COLL_OPS, type CollOp, type MemberResult, type ReduceOp } from "./types.ts";

/** Largest value a member may contribute. */
export const MAX_COLL_VALUE_BYTES = 16 * 1024 * 1024;

function payload(data: Uint8Array): { data: string; text?: string } {
  const b64 = Buffer.from(data).toString("base64");
  try {
    return { data: b64, text: new TextDecoder("utf-8", { fatal: true }).decode(data) };
  } catch {
    return { data: b64 };
  }
}

function int(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Query parameter "${name}" must be an integer ≥ 0, not "${raw}"`);
  }
  return n;
}

function parseParts(body: Uint8Array, base64: boolean): Uint8Array[] {
  let list: unknown;
  try {
    list = JSON.parse(new TextDecoder().decode(body));
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
    throw new RangeError("The root of a scatter sends a JSON array of strings, one per member in rank order");
  }
  return list.map((s: string) =>
    base64 ? new Uint8Array(Buffer.from(s, "base64")) : new TextEncoder().encode(s)
  );
}

/** JSON of a member's result. */
export function resultJson(r: MemberResult): Record<string, unknown> {
  return {
    name: r.name,
    generation: r.generation,
    op: r.op,
    size: r.size,
    ...(r.data ? payload(r.data) : {}),
    ...(r.values ? { values: r.values.map((v) => ({ path: v.path, ...payload(v.data) })) } : {}),
  };
}

/** JSON of a collective's error, with the status the task API answers it with. */
export function errorJson(err: unknown): { status: number; body: unknown } | undefined {
  if (err instanceof CollectiveFailedError) {
    return {
      status: 409,
      body: {
        error: {
          name: err.name,
          message: err.message,
          generation: err.generation,
          reason: err.reason,
          missing: err.missing,
          missingCount: err.missingCount,
        },
      },
    };
  }
  if (err instanceof CollectiveMismatchError) {
    return { status: 409, body: { error: { name: err.name, message: err.message } } };
  }
  if (err instanceof CollectiveGroupError || err instanceof RangeError) {
    return { status: 400, body: { error: { name: err.name, message: err.message } } };
  }
  return undefined;
}

/** The `coll` area of the task API. */
export function collRoute(service: CollService): TaskRoute {
  return async (task, req) => {
    const [op, name, ...rest] = req.parts;
    if (req.method !== "POST" || op === undefined || name === undefined || rest.length > 0) {
      return {
        status: 404,
        body: {
          error: {
            name: "NotFoundError",
            message: `No route ${req.method} "${req.url.pathname}"; POST /v1/coll/<op>/<name>`,
          },
        },
      };
    }
    try {
      if (!(COLL_OPS as readonly string[]).includes(op)) {
        throw new RangeError(`Unknown collective "${op}"; use ${COLL_OPS.join(", ")}`);
      }
      const q = req.url.searchParams;
      const body = await req.body(MAX_COLL_VALUE_BYTES, `Value of collective "${name}"`);
      const timeoutMs = int(req.url, "timeout");
      const fanout = int(req.url, "fanout");
      const isScatterRoot = op === "scatter" && body.byteLength > 0;
      const r = await service.contribute(task, {
        op: op as CollOp,
        name,
        ...(q.get("group") ? { group: q.get("group")! } : {}),
        ...(q.get("reduce") ? { reduce: q.get("reduce") as ReduceOp } : {}),
        ...(q.get("root") ? { root: q.get("root")! } : {}),
        ...(fanout !== undefined ? { fanout } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        ...(isScatterRoot ? { parts: parseParts(body, q.get("encoding") === "base64") } : { data: body }),
        signal: req.signal,
      });
      return { status: 200, body: resultJson(r) };
    } catch (err) {
      const e = errorJson(err);
      if (e) return e;
      throw err;
    }
  };
}

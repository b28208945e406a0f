/**
 * The collectives part of the task client (`task.coll`): barrier, broadcast, gather, allgather,
 * scatter, reduce and allreduce through the local agent, which combines its members and then talks
 * along a tree of agents. Values are bytes (strings are sent as UTF-8; numbers as decimal text).
 *
 * @module
 */
import { callJson, type Endpoint } from "./_http.ts";

/** A built-in reduction, or a function combining two values (applied in rank order, in this task). */
export type Reduction = "sum" | "min" | "max" | "concat" | ((a: Uint8Array, b: Uint8Array) => Uint8Array);

/** Options of every collective. */
export interface CollOptions {
  /**
   * The members: `all` (default: every task of the topology), `collection` (this task's collection
   * instance), `collection:<path>`, `group:<name>`, `regex:<re>` (whole path), `tasks:<id or path>,…`.
   */
  group?: string;
  /** End the generation for every member if it has not completed this long after this call. */
  timeoutMs?: number;
  /** Fan-out of the tree of agents (default 8); all members must agree. */
  fanout?: number;
  signal?: AbortSignal;
}

/** Options of rooted collectives (broadcast, gather, scatter, reduce). */
export interface RootedOptions extends CollOptions {
  /** The root member's path or task ID (default the group's first member). */
  root?: string;
}

/**
 * A value: bytes, non-contiguous bytes (a list of buffers, sent as one value in order), text, or a number
 * (sent as decimal text).
 */
export type CollValue = Uint8Array | readonly Uint8Array[] | string | number | bigint;

/** What a member gets back. */
export interface CollResult {
  name: string;
  /** This member's call count of the collective: its n-th call is generation n. */
  generation: number;
  op: string;
  /** Members of the group. */
  size: number;
  data?: Uint8Array;
  /** `data` as text, when it is UTF-8. */
  text?: string;
  /** gather (root) and allgather: every member's value in rank order. */
  values?: { path: string; data: Uint8Array; text?: string }[];
}

/** `task.coll`. */
export interface CollClient {
  /** Waits until every member of the group called it. */
  barrier(name: string, options?: CollOptions): Promise<CollResult>;
  /** The root's value to every member (others pass nothing). */
  broadcast(name: string, value?: CollValue, options?: RootedOptions): Promise<CollResult>;
  /** Every member's value, in rank order, at the root. */
  gather(name: string, value: CollValue, options?: RootedOptions): Promise<CollResult>;
  /** Every member's value, in rank order, at every member. */
  allgather(name: string, value: CollValue, options?: CollOptions): Promise<CollResult>;
  /** The root gives one part per member (in rank order); each member gets its own. */
  scatter(name: string, parts?: CollValue[], options?: RootedOptions): Promise<CollResult>;
  /** Every member's value combined, at the root. */
  reduce(name: string, value: CollValue, options?: RootedOptions & { op?: Reduction }): Promise<CollResult>;
  /** Every member's value combined, at every member. */
  allreduce(name: string, value: CollValue, options?: CollOptions & { op?: Reduction }): Promise<CollResult>;
}

const te = new TextEncoder();

function bytes(v: CollValue | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array();
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) {
    const out = new Uint8Array(v.reduce((n: number, b: Uint8Array) => n + b.byteLength, 0));
    let at = 0;
    for (const b of v as readonly Uint8Array[]) {
      out.set(b, at);
      at += b.byteLength;
    }
    return out;
  }
  return te.encode(String(v));
}

function fromBase64(data: string): Uint8Array {
  const bin = atob(data);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

interface Wire {
  name: string;
  generation: number;
  op: string;
  size: number;
  data?: string;
  text?: string;
  values?: { path: string; data: string; text?: string }[];
}

/** The collectives client on `ep`. */
export function collClient(ep: Endpoint): CollClient {
  const call = async (
    op: string,
    name: string,
    body: Uint8Array,
    o: RootedOptions & { reduce?: string; encoding?: string } = {},
  ): Promise<CollResult> => {
    const q = new URLSearchParams();
    if (o.group) q.set("group", o.group);
    if (o.timeoutMs !== undefined) q.set("timeout", String(Math.round(o.timeoutMs)));
    if (o.fanout !== undefined) q.set("fanout", String(o.fanout));
    if (o.root) q.set("root", o.root);
    if (o.reduce) q.set("reduce", o.reduce);
    if (o.encoding) q.set("encoding", o.encoding);
    const qs = q.toString();
    const r = await callJson<Wire>(
      ep,
      "POST",
      `/v1/coll/${op}/${encodeURIComponent(name)}${qs ? `?${qs}` : ""}`,
      {
        body,
        ...(o.signal ? { signal: o.signal } : {}),
      },
    );
    return {
      name: r.name,
      generation: r.generation,
      op: r.op,
      size: r.size,
      ...(r.data !== undefined ? { data: fromBase64(r.data) } : {}),
      ...(r.text !== undefined ? { text: r.text } : {}),
      ...(r.values
        ? {
          values: r.values.map((v) => ({
            path: v.path,
            data: fromBase64(v.data),
            ...(v.text !== undefined ? { text: v.text } : {}),
          })),
        }
        : {}),
    };
  };
  /** A user function: gather the values, then fold them here in rank order. */
  const folded = async (
    op: "gather" | "allgather",
    name: string,
    value: CollValue,
    fn: (a: Uint8Array, b: Uint8Array) => Uint8Array,
    o: RootedOptions,
  ): Promise<CollResult> => {
    const r = await call(op, name, bytes(value), o);
    if (!r.values) return { name: r.name, generation: r.generation, op: r.op, size: r.size };
    const data = r.values.map((v) => v.data).reduce((a, b) => fn(a, b));
    let text: string | undefined;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(data);
    } catch { /* binary */ }
    return {
      name: r.name,
      generation: r.generation,
      op: r.op,
      size: r.size,
      data,
      ...(text !== undefined ? { text } : {}),
    };
  };
  return {
    barrier: (name, o) => call("barrier", name, new Uint8Array(), o),
    broadcast: (name, value, o) => call("broadcast", name, bytes(value), o),
    gather: (name, value, o) => call("gather", name, bytes(value), o),
    allgather: (name, value, o) => call("allgather", name, bytes(value), o),
    scatter: (name, parts, o) =>
      call(
        "scatter",
        name,
        parts ? te.encode(JSON.stringify(parts.map((p) => toBase64(bytes(p))))) : new Uint8Array(),
        { ...o, encoding: "base64" },
      ),
    reduce: (name, value, o = {}) => {
      const { op, ...rest } = o;
      if (typeof op === "function") return folded("gather", name, value, op, rest);
      return call("reduce", name, bytes(value), { ...rest, reduce: op ?? "sum" });
    },
    allreduce: (name, value, o = {}) => {
      const { op, ...rest } = o;
      if (typeof op === "function") return folded("allgather", name, value, op, rest);
      return call("allreduce", name, bytes(value), { ...rest, reduce: op ?? "sum" });
    },
  };
}

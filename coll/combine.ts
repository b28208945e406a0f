/**
 * Combining contributions: a member's value becomes a partial, partials merge (associatively, in any
 * order), and the root turns the total into what each member gets. Numbers for `sum`/`min`/`max` are
 * decimal text (a number or a JSON array of numbers, reduced element-wise); integers are summed as
 * BigInt, so integer sums are exact at any size.
 *
 * @module
 */
import type { CollSpec, MemberResult, Partial } from "./types.ts";

const INT = /^-?\d+$/;
const dec = new TextDecoder();
const enc = new TextEncoder();

type Num = bigint | number;

function toNum(token: string, what: string): Num {
  const t = token.trim();
  if (INT.test(t)) return BigInt(t);
  const n = t === "" ? NaN : Number(t);
  if (!Number.isFinite(n)) throw new RangeError(`${what}: "${t.slice(0, 40)}" is not a number`);
  return n;
}

/** Parses a number or a JSON array of numbers (kept as decimal strings). */
export function parseNumbers(bytes: Uint8Array, what = "Value"): { nums: string[]; scalar: boolean } {
  const text = dec.decode(bytes).trim();
  const scalar = !text.startsWith("[");
  const body = scalar ? text : text.replace(/^\[/, "").replace(/\]$/, "");
  if (!scalar && !text.endsWith("]")) {
    throw new RangeError(`${what}: "${text.slice(0, 40)}" is not a JSON array`);
  }
  const tokens = body.trim() === "" ? [] : body.split(",");
  if (scalar && tokens.length !== 1) {
    throw new RangeError(`${what}: "${text.slice(0, 40)}" is not a number (or a JSON array of numbers)`);
  }
  return { nums: tokens.map((t) => String(toNum(t, what))), scalar };
}

function apply(op: "sum" | "min" | "max", a: Num, b: Num): Num {
  if (op === "sum") {
    return typeof a === "bigint" && typeof b === "bigint" ? a + b : Number(a) + Number(b);
  }
  if (op === "min") return b < a ? b : a;
  return b > a ? b : a;
}

function parsed(s: string): Num {
  return INT.test(s) ? BigInt(s) : Number(s);
}

/**
 * A member's contribution as a partial. `rank` is its place in the group; `isRoot` says whether it is
 * the root member of a rooted operation.
 */
export function contribution(
  spec: CollSpec,
  rank: number,
  isRoot: boolean,
  value: { data?: Uint8Array; parts?: Uint8Array[] },
): Partial {
  const data = value.data ?? new Uint8Array();
  switch (spec.op) {
    case "barrier":
      return { count: 1 };
    case "broadcast":
      return isRoot ? { count: 1, items: [[rank, data]] } : { count: 1 };
    case "scatter":
      if (!isRoot) return { count: 1 };
      if (!value.parts) throw new RangeError("The root of a scatter gives one part per member");
      return { count: 1, parts: value.parts };
    case "gather":
    case "allgather":
      return { count: 1, items: [[rank, data]] };
    case "reduce":
    case "allreduce": {
      if (spec.reduce === "concat" || spec.reduce === undefined) return { count: 1, items: [[rank, data]] };
      return { count: 1, ...parseNumbers(data) };
    }
  }
}

/** Merges `b` into `a` (returns a new partial). */
export function merge(spec: CollSpec, a: Partial, b: Partial): Partial {
  const out: Partial = { count: a.count + b.count };
  if (a.items || b.items) out.items = [...(a.items ?? []), ...(b.items ?? [])];
  if (a.parts || b.parts) out.parts = a.parts ?? b.parts!;
  if (a.nums && b.nums) {
    if (a.nums.length !== b.nums.length || a.scalar !== b.scalar) {
      throw new RangeError(
        `Values of "${spec.name}" do not have the same shape (${
          a.scalar ? "a number" : `${a.nums.length} numbers`
        } and ${b.scalar ? "a number" : `${b.nums.length} numbers`})`,
      );
    }
    const op = spec.reduce as "sum" | "min" | "max";
    out.nums = a.nums.map((x, i) => String(apply(op, parsed(x), parsed(b.nums![i]!))));
    out.scalar = a.scalar;
  } else if (a.nums || b.nums) {
    out.nums = a.nums ?? b.nums!;
    out.scalar = a.scalar ?? b.scalar;
  }
  return out;
}

/** Merges any number of partials (none: an empty one). */
export function mergeAll(spec: CollSpec, partials: Iterable<Partial>): Partial {
  let acc: Partial | undefined;
  for (const p of partials) acc = acc ? merge(spec, acc, p) : p;
  return acc ?? { count: 0 };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** What the member of `rank` gets from the root's total `final` (`members` in rank order). */
export function resultFor(
  spec: CollSpec,
  final: Partial,
  generation: number,
  members: readonly string[],
  rank: number,
  isRoot: boolean,
): MemberResult {
  const base: MemberResult = { name: spec.name, generation, op: spec.op, size: members.length };
  const sorted = () => [...(final.items ?? [])].sort((x, y) => x[0] - y[0]);
  switch (spec.op) {
    case "barrier":
      return base;
    case "broadcast":
      return { ...base, data: final.items?.[0]?.[1] ?? new Uint8Array() };
    case "scatter":
      return { ...base, data: final.parts?.[rank] ?? new Uint8Array() };
    case "gather":
    case "allgather":
      if (spec.op === "gather" && !isRoot) return base;
      return { ...base, values: sorted().map(([r, d]) => ({ path: members[r] ?? `#${r}`, data: d })) };
    case "reduce":
    case "allreduce": {
      if (spec.op === "reduce" && !isRoot) return base;
      if (final.nums) {
        const text = final.scalar ? final.nums[0] ?? "0" : `[${final.nums.join(",")}]`;
        return { ...base, data: enc.encode(text) };
      }
      return { ...base, data: concat(sorted().map(([, d]) => d)) };
    }
  }
}

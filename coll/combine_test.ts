import { assertEquals, assertStringIncludes, assertThrows } from "../tests/_assert.ts";
import { contribution, mergeAll, parseNumbers, resultFor } from "./combine.ts";
import type { CollSpec } from "./types.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const spec = (s: Partial<CollSpec>): CollSpec => ({
  topologyId: "t",
  name: "n",
  group: "all",
  op: "barrier",
  fanout: 8,
  ...s,
});
const members = ["a", "b", "c", "d"];

function run(s: CollSpec, values: string[], root = 0) {
  const parts = values.map((v, i) => contribution(s, i, i === root, { data: te.encode(v) }));
  // Combined in a tree-like order, not rank order: merging is associative and order-free.
  const total = mergeAll(s, [mergeAll(s, [parts[3]!, parts[1]!]), mergeAll(s, [parts[2]!, parts[0]!])]);
  return members.map((_, i) => resultFor(s, total, 1, members, i, i === root));
}

Deno.test("coll combine: integer sums are exact beyond 2^53", () => {
  const s = spec({ op: "allreduce", reduce: "sum" });
  const r = run(s, ["9007199254740993", "9007199254740993", "1", "-1"]);
  for (const x of r) assertEquals(td.decode(x.data), "18014398509481986");
});

Deno.test("coll combine: min, max and element-wise arrays; fractions as numbers", () => {
  assertEquals(
    td.decode(run(spec({ op: "allreduce", reduce: "min" }), ["3", "-2", "7", "0"])[2]!.data),
    "-2",
  );
  assertEquals(
    td.decode(run(spec({ op: "allreduce", reduce: "max" }), ["[1,5]", "[4,2]", "[0,9]", "[3,3]"])[0]!.data),
    "[4,9]",
  );
  assertEquals(
    td.decode(run(spec({ op: "allreduce", reduce: "sum" }), ["0.5", "1", "2", "0.25"])[0]!.data),
    "3.75",
  );
});

Deno.test("coll combine: concat and gathers keep rank order; reduce and gather answer the root only", () => {
  assertEquals(
    td.decode(run(spec({ op: "allreduce", reduce: "concat" }), ["a", "b", "c", "d"])[1]!.data),
    "abcd",
  );
  const g = run(spec({ op: "gather", root: "c" }), ["w", "x", "y", "z"], 2);
  assertEquals(g[2]!.values!.map((v) => `${v.path}=${td.decode(v.data)}`), ["a=w", "b=x", "c=y", "d=z"]);
  assertEquals(g[0]!.values, undefined);
  const r = run(spec({ op: "reduce", reduce: "sum", root: "a" }), ["1", "2", "3", "4"]);
  assertEquals(td.decode(r[0]!.data), "10");
  assertEquals(r[1]!.data, undefined);
});

Deno.test("coll combine: broadcast gives the root's value; scatter each member its part", () => {
  const b = run(spec({ op: "broadcast", root: "b" }), ["", "hello", "", ""], 1);
  for (const x of b) assertEquals(td.decode(x.data), "hello");
  const s = spec({ op: "scatter", root: "a" });
  const parts = members.map((_, i) =>
    contribution(s, i, i === 0, i === 0 ? { parts: ["p0", "p1", "p2", "p3"].map((p) => te.encode(p)) } : {})
  );
  const total = mergeAll(s, parts.reverse());
  assertEquals(members.map((_, i) => td.decode(resultFor(s, total, 1, members, i, i === 0).data)), [
    "p0",
    "p1",
    "p2",
    "p3",
  ]);
});

Deno.test("coll combine: bad numbers and shapes are clear errors", () => {
  assertStringIncludes(
    assertThrows(() => parseNumbers(te.encode("five")), RangeError).message,
    '"five" is not a number',
  );
  assertThrows(() => parseNumbers(te.encode("[1,")), RangeError);
  const s = spec({ op: "allreduce", reduce: "sum" });
  assertStringIncludes(
    assertThrows(() => run(s, ["1", "[1,2]", "3", "4"]), RangeError).message,
    "same shape",
  );
});

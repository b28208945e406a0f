import { assertEquals } from "../../tests/_assert.ts";
import { quorumOf } from "./quorum.ts";

const record = (members: string[] | undefined, placement: Record<string, string[]>) => ({
  ...(members ? { members } : {}),
  placement,
});

Deno.test("quorum: a 3|3 cut leaves neither half a strict majority", () => {
  const r = record(["a", "b", "c", "d", "e", "f"], { a: ["t0"], d: ["t1"] });
  assertEquals(quorumOf(r, new Set(["a", "b", "c"])), { sees: 3, of: 6, need: 4, majority: false });
  assertEquals(quorumOf(r, new Set(["d", "e", "f"])).majority, false);
});

Deno.test("quorum: in a 4|2 cut only the four re-place; in 3|1|1|1 nobody does", () => {
  const r = record(["a", "b", "c", "d", "e", "f"], {});
  assertEquals(quorumOf(r, new Set(["a", "b", "c", "d"])).majority, true);
  assertEquals(quorumOf(r, new Set(["e", "f"])).majority, false);
  assertEquals(quorumOf(r, new Set(["a", "b", "c"])).majority, false);
  assertEquals(quorumOf(r, new Set(["d"])).majority, false);
});

Deno.test("quorum: agents proven dead leave the count, so 1 of 2 may recover a crashed peer", () => {
  const r = record(["a", "b"], { a: ["t0"], b: ["t1"] });
  assertEquals(quorumOf(r, new Set(["a"])).majority, false);
  assertEquals(quorumOf(r, new Set(["a"]), new Set(["b"])), { sees: 1, of: 1, need: 1, majority: true });
  // Two of four crashed in one sweep: the two left are all that is left.
  const four = record(["a", "b", "c", "d"], {});
  assertEquals(quorumOf(four, new Set(["a", "b"]), new Set(["c", "d"])).majority, true);
});

Deno.test("quorum: an older record without members counts its holders", () => {
  const r = record(undefined, { a: ["t0"], b: ["t1"], c: ["t2"] });
  assertEquals(quorumOf(r, new Set(["a", "b", "x"])), { sees: 2, of: 3, need: 2, majority: true });
});

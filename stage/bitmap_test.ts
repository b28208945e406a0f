import { assertEquals } from "../tests/_assert.ts";
import { Bitmap } from "./bitmap.ts";

Deno.test("stage bitmap: bits set, counted, and sent as bytes that ignore bits past the end", () => {
  const b = new Bitmap(10);
  assertEquals(b.set(3), true);
  assertEquals(b.set(3), false);
  b.set(9);
  assertEquals([b.has(3), b.has(9), b.has(4), b.count, b.full], [true, true, false, 2, false]);
  const copy = new Bitmap(10, new Uint8Array([0xff, 0xff]));
  assertEquals([copy.count, copy.full, copy.has(10)], [10, true, false]);
  const big = new Bitmap(20);
  big.setFrom(b, 10);
  assertEquals([big.has(13), big.has(19), big.count], [true, true, 2]);
});

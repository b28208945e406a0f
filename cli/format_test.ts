import { assertEquals } from "../tests/_assert.ts";
import { duration, shortId, table } from "./format.ts";

Deno.test("format: durations read naturally", () => {
  assertEquals(duration(3_400), "3s");
  assertEquals(duration(252_000), "4m12s");
  assertEquals(duration(7_500_000), "2h05m");
  assertEquals(duration(97_200_000), "1d3h");
});

Deno.test("format: tables align columns without borders", () => {
  assertEquals(table(["A", "BB"], [["x", 1], ["yyy", 22]]).split("\n").map((l) => l.length), [7, 6, 7]);
});

Deno.test("format: short IDs keep the last 8 characters", () => {
  assertEquals(shortId("12D3KooWAbCdEfGhIjKl"), "…EfGhIjKl");
  assertEquals(shortId("local"), "local");
});

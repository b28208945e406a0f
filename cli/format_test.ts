import { assertEquals } from "../tests/_assert.ts";
import { duration, shortId, table } from "./format.ts";

Deno.test("format: durations read naturally", () => {
  assertEquals(duration(3_400), "3s");
  assertEquals(duration(252_000), "4m12s");
  assertEquals(duration(7_500_000), "2h05m");
  assertEquals(duration(97_200_000), "1d3h");
});

/** Without the bold header a terminal gets. */
// deno-lint-ignore no-control-regex -- ANSI escapes start with ESC
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

Deno.test("format: tables align columns without borders", () => {
  assertEquals(plain(table(["A", "BB"], [["x", 1], ["yyy", 22]])), "A    BB\nx    1\nyyy  22");
  // Columns are as wide as their widest cell, two spaces apart; nothing trails a line.
  assertEquals(
    plain(table(["PATH", "PID", "STATE"], [["main/t_0", 412, "running"], ["m", "", "exited"]])),
    "PATH      PID  STATE\nmain/t_0  412  running\nm              exited",
  );
});

Deno.test("format: short IDs keep the last 8 characters", () => {
  assertEquals(shortId("12D3KooWAbCdEfGhIjKl"), "…EfGhIjKl");
  assertEquals(shortId("local"), "local");
});

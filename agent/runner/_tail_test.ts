import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals } from "../../tests/_assert.ts";
import { tailLines } from "./_tail.ts";

Deno.test("tail: the last N lines of a file larger than one block", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-tail-"));
  try {
    const file = join(dir, "agent.log");
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}`);
    writeFileSync(file, lines.join("\n") + "\n");
    assertEquals(await tailLines(file, 3), {
      text: "line 19997\nline 19998\nline 19999\n",
      lines: 3,
      truncated: false,
    });
    assertEquals((await tailLines(file, 15_000)).text.split("\n")[0], "line 5000");
    const all = await tailLines(file, 100_000);
    assertEquals([all.lines, all.truncated], [20_000, false]);
    const bounded = await tailLines(file, 100_000, { maxBytes: 100 });
    assertEquals([bounded.text, bounded.truncated], [
      "line 19991\nline 19992\nline 19993\nline 19994\nline 19995\nline 19996\nline 19997\nline 19998\nline 19999\n",
      true,
    ]);
    writeFileSync(file, "no final newline");
    assertEquals(await tailLines(file, 5), { text: "no final newline\n", lines: 1, truncated: false });
    writeFileSync(file, "");
    assertEquals(await tailLines(file, 5), { text: "", lines: 0, truncated: false });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

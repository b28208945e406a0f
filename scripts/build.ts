/**
 * `deno task build`: makes `dist/shoal`, a single self-contained executable.
 *
 * Tries `deno compile` first (it needs Deno's standalone runtime: cached, given by `DENORT_BIN`, or
 * downloadable) and falls back to `bun build --compile --bytecode --splitting`, which works offline (the
 * chunks stay inside the binary; each is read when imported, so a command loads only its own code). Says
 * which one it used, and records it in `dist/shoal.builder`. `SHOAL_BUILDER=bun|deno` forces one.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { assetsModule } from "./embed_ui.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}dist/shoal`;
const entry = `${root}cli/main.ts`;
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

function run(cmd: string, args: string[]): { ok: boolean; output: string } {
  const r = spawnSync(cmd, args, {
    cwd: root,
    encoding: "utf8",
    timeout: 300_000,
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error?.message ?? ""}` };
}

function reason(text: string): string {
  const lines = text.split("\n").map((l) => l.trim().replace(/^\d+: /, "")).filter((l) =>
    l && !/^Stack backtrace|^<unknown>/.test(l)
  );
  const error = lines.find((l) => /error/i.test(l)) ?? "";
  return [error, lines.at(-1)].filter((l, i, a) => l && a.indexOf(l) === i).join(": ") || "no output";
}

mkdirSync(`${root}dist`, { recursive: true });
// The dashboard's files go into the binary as strings (ui/_assets.ts).
writeFileSync(`${root}ui/_assets.ts`, assetsModule());
const forced = process.env.SHOAL_BUILDER;
let builder: "deno" | "bun" | undefined;

if (forced !== "bun") {
  rmSync(out, { force: true });
  const started = performance.now();
  const r = run(process.execPath, ["compile", "-A", "--quiet", "--output", out, entry]);
  if (r.ok) builder = "deno";
  else {
    console.error(`build: deno compile is unavailable here (${reason(r.output)})`);
    if (forced === "deno") process.exit(1);
    console.error(
      `build: falling back to bun build --compile (deno tried for ${
        Math.round(performance.now() - started)
      } ms)`,
    );
  }
}
if (!builder) {
  rmSync(out, { force: true });
  const r = run(bin("bun"), [
    "build",
    "--compile",
    "--bytecode",
    "--splitting",
    "--format=esm",
    entry,
    "--outfile",
    out,
  ]);
  if (!r.ok) {
    console.error(`build: bun build --compile failed:\n${r.output}`);
    process.exit(1);
  }
  builder = "bun";
}
writeFileSync(`${out}.builder`, `${builder}\n`);
const mb = (statSync(out).size / 1024 / 1024).toFixed(0);
console.log(
  `build: wrote dist/shoal (${mb} MB) with ${
    builder === "deno" ? "deno compile" : "bun build --compile --bytecode --splitting"
  }`,
);

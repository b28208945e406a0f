/**
 * How to start the `shoal` binary again (for agents): the compiled binary is `process.execPath`; under
 * `deno run` or `bun run` it is the runtime plus this source tree's entry point.
 *
 * @module
 */
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import type { SelfCommand } from "../rms/mod.ts";

/** The command line that runs this very `shoal`. `SHOAL_BIN` overrides it. */
export function selfCommand(): SelfCommand {
  if (process.env.SHOAL_BIN) return { command: process.env.SHOAL_BIN, args: [] };
  const exe = process.execPath;
  const base = basename(exe);
  const main = fileURLToPath(new URL("./main.ts", import.meta.url));
  if (base === "deno") return { command: exe, args: ["run", "-A", main] };
  if (base === "bun") return { command: exe, args: ["run", main] };
  return { command: exe, args: [] };
}

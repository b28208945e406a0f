/**
 * The `shoal` binary that remote plug-ins ship to nodes, and its SHA-256 (so it is copied once per host).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { resolve } from "node:path";
import { RmsConfigError } from "./errors.ts";
import type { SelfCommand } from "./types.ts";

const cache = new Map<string, string>();

/** SHA-256 (hex) of a file, cached by path, size and modification time. */
export async function sha256File(file: string): Promise<string> {
  const st = statSync(file);
  const key = `${file}\0${st.size}\0${st.mtimeMs}`;
  const known = cache.get(key);
  if (known) return known;
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Uint8Array);
  const hex = hash.digest("hex");
  cache.set(key, hex);
  return hex;
}

/** The single-file binary to ship: the plug-in config's `binary`, else this very binary. */
export function shippableBinary(self: SelfCommand, configured: string | undefined, rms: string): string {
  const file = configured ?? (self.args.length === 0 ? self.command : undefined);
  if (!file) {
    throw new RmsConfigError(
      "",
      `The ${rms} plug-in ships a compiled shoal binary to the nodes, but this shoal runs from source ` +
        `("${[self.command, ...self.args].join(" ")}"); build one with \`deno task build\` and set ` +
        `SHOAL_BIN=dist/shoal, or "binary" in the plug-in config`,
    );
  }
  try {
    if (!statSync(file).isFile()) throw new Error("not a file");
  } catch (cause) {
    throw new RmsConfigError("", `The shoal binary "${file}" to ship is not a readable file`, { cause });
  }
  // The pilots run elsewhere (a batch job's own directory): a relative path would not find it there.
  return resolve(file);
}

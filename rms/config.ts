/**
 * Plug-in configuration files: JSON validated by a valibot schema, with errors naming file and field.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import * as v from "valibot";
import { RmsConfigError } from "./errors.ts";
import { PilotConfigSchema } from "./pilot.ts";

/** Options every remote plug-in understands. */
export const CommonConfigEntries = {
  /** The pilot's steps (see `pilot.ts`), applied on top of the pilots file's list. */
  pilot: v.optional(PilotConfigSchema),
  /** A pilots file: step lists per resource type and site step directories (see `pilots.ts`). */
  pilots: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** The agents' listen address (default `/ip4/0.0.0.0/tcp/0`). */
  listen: v.optional(v.pipe(v.string(), v.startsWith("/"))),
  /** Shell lines run by every pilot before its steps (DDS `@bash_begin@ … @bash_end@`). */
  env: v.optional(v.string()),
  /** The binary to ship (default: this shoal's own executable). */
  binary: v.optional(v.string()),
  /** Seconds a pilot may take to get its agent listening (default 60). */
  startTimeout: v.optional(v.pipe(v.number(), v.minValue(1))),
};

/** Parses `text` (from `file`) as JSON and validates it with `schema`. */
export function parseJsonConfig<S extends v.GenericSchema>(
  file: string,
  text: string,
  schema: S,
): v.InferOutput<S> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new RmsConfigError(file, `Not valid JSON (${(cause as Error).message})`, { cause });
  }
  const r = v.safeParse(schema, data);
  if (!r.success) {
    const issue = r.issues[0];
    const path = issue.path?.map((p: { key: unknown }) => String(p.key)).join(".") ?? "";
    throw new RmsConfigError(file, `${path ? `"${path}": ` : ""}${issue.message}`);
  }
  // A pilots file named in the config is relative to the config.
  const out = r.output as { pilots?: unknown };
  if (typeof out.pilots === "string" && !isAbsolute(out.pilots)) out.pilots = join(dirname(file), out.pilots);
  return r.output;
}

/** Reads a config file; a missing one is a config error naming it. */
export async function readConfigFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    throw new RmsConfigError(file, `Cannot read the plug-in config (${(cause as Error).message})`, { cause });
  }
}

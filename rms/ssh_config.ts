/**
 * The ssh plug-in's host list, in DDS's format or shoal's native JSON.
 *
 * DDS format: an optional environment block, then one worker per line — `id, user@host, ssh options,
 * remote work dir, slots` — with `#` comments:
 *
 * ```
 * @bash_begin@
 * module load gcc
 * @bash_end@
 * wn1, alice@node1, -p 22, /tmp/shoal, 8
 * ```
 *
 * Native format: `{ "hosts": [{ "host": "alice@node1", "slots": 8, … }], "listen": …, "pilot": … }`.
 *
 * @module
 */
import * as v from "valibot";
import { CommonConfigEntries, parseJsonConfig } from "./config.ts";
import { RmsConfigError } from "./errors.ts";

const HostSchema = v.strictObject({
  /** Short name (DDS's worker ID); default: the host. */
  id: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9._@-]{1,64}$/, "an id is 1-64 of A-Z a-z 0-9 . _ @ -")),
  ),
  /** `[user@]host` as ssh takes it (a `Host` alias of ~/.ssh/config works too). */
  host: v.pipe(v.string(), v.minLength(1)),
  port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535))),
  /** Extra ssh options, as a list or one string. */
  sshOptions: v.optional(v.union([v.array(v.string()), v.string()])),
  workDir: v.optional(v.pipe(v.string(), v.minLength(1))),
  slots: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /** Agents on this host (default 1). */
  agents: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  listen: v.optional(v.pipe(v.string(), v.startsWith("/"))),
});

/** The native JSON config of the ssh plug-in. */
export const SshConfigSchema = v.strictObject({
  hosts: v.optional(v.array(HostSchema)),
  /** ssh options for every host, before each host's own. */
  sshOptions: v.optional(v.union([v.array(v.string()), v.string()])),
  /** Remote work dir (default `~/.shoal/work`). */
  workDir: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** Seconds to wait for an ssh connection (default 10). */
  connectTimeout: v.optional(v.pipe(v.number(), v.minValue(1))),
  /** Reuse one ssh connection per host (ControlMaster; default true). */
  controlMaster: v.optional(v.boolean()),
  /** Seconds an idle shared connection stays open (default 60). */
  controlPersist: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  /** Path of the `ssh` program (default: `ssh` on PATH). */
  ssh: v.optional(v.string()),
  ...CommonConfigEntries,
});

/** The native JSON config of the ssh plug-in. */
export type SshConfig = v.InferOutput<typeof SshConfigSchema>;

/** One host of the list, normalised. */
export interface SshHost {
  id: string;
  destination: string;
  /** ssh options (the port included as `-p`). */
  options: string[];
  workDir: string;
  /** Slots per agent; undefined means "as the submission asks". */
  slots?: number;
  agents: number;
  listen?: string;
}

/** Default remote work dir. */
export const DEFAULT_WORK_DIR = "~/.shoal/work";

/** Splits an option string like a shell would (quotes, backslashes; no expansions). */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  let has = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (c === "\\" && i + 1 < text.length) {
      cur += text[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has) words.push(cur);
      cur = "";
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote) throw new RangeError(`Unclosed ${quote} in "${text}"`);
  if (has) words.push(cur);
  return words;
}

/** Parses DDS's ssh config format into the native form. */
export function parseDdsSshConfig(file: string, text: string): SshConfig {
  const hosts: NonNullable<SshConfig["hosts"]> = [];
  const env: string[] = [];
  let inEnv = false;
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const at = { line: i + 1 };
    if (line === "@bash_begin@") {
      if (inEnv) throw new RmsConfigError(file, "@bash_begin@ inside an environment block", at);
      inEnv = true;
      return;
    }
    if (line === "@bash_end@") {
      if (!inEnv) throw new RmsConfigError(file, "@bash_end@ without @bash_begin@", at);
      inEnv = false;
      return;
    }
    if (inEnv) {
      env.push(raw);
      return;
    }
    if (!line || line.startsWith("#")) return;
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length < 5) {
      throw new RmsConfigError(
        file,
        `Expected "id, user@host, ssh options, work dir, slots" (5 fields), found ${fields.length}: "${line}"`,
        at,
      );
    }
    const [id, host] = fields as [string, string];
    const slotsText = fields.at(-1)!;
    const workDir = fields.at(-2)!;
    const optionText = fields.slice(2, -2).join(",");
    const slots = Number(slotsText);
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(id)) {
      throw new RmsConfigError(file, `Worker ID "${id}" is invalid`, at);
    }
    if (seen.has(id)) throw new RmsConfigError(file, `Worker ID "${id}" appears twice`, at);
    seen.add(id);
    if (!host) throw new RmsConfigError(file, `Worker "${id}" has no host`, at);
    if (!workDir) throw new RmsConfigError(file, `Worker "${id}" has no work dir`, at);
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RmsConfigError(file, `Worker "${id}": slots "${slotsText}" is not an integer ≥ 1`, at);
    }
    let sshOptions: string[];
    try {
      sshOptions = splitWords(optionText);
    } catch (err) {
      throw new RmsConfigError(file, `Worker "${id}": ${(err as Error).message}`, at);
    }
    hosts.push({ id, host, sshOptions, workDir, slots });
  });
  if (inEnv) throw new RmsConfigError(file, "@bash_begin@ without @bash_end@");
  if (hosts.length === 0) {
    throw new RmsConfigError(file, "No worker lines (id, user@host, ssh options, work dir, slots)");
  }
  return { hosts, ...(env.length ? { env: env.join("\n") } : {}) };
}

/** Parses either format (JSON when the text starts with `{`). */
export function parseSshConfig(file: string, text: string): SshConfig {
  return text.trimStart().startsWith("{")
    ? parseJsonConfig(file, text, SshConfigSchema)
    : parseDdsSshConfig(file, text);
}

function words(o: string[] | string | undefined): string[] {
  return o === undefined ? [] : typeof o === "string" ? splitWords(o) : o;
}

/** The config's hosts with defaults applied. */
export function sshHosts(config: SshConfig): SshHost[] {
  const ids = new Set<string>();
  return (config.hosts ?? []).map((h, i) => {
    let id = h.id ?? h.host.replace(/^.*@/, "");
    if (ids.has(id)) id = `${id}-${i}`;
    ids.add(id);
    return {
      id,
      destination: h.host,
      options: [
        ...words(config.sshOptions),
        ...(h.port ? ["-p", String(h.port)] : []),
        ...words(h.sshOptions),
      ],
      workDir: h.workDir ?? config.workDir ?? DEFAULT_WORK_DIR,
      agents: h.agents ?? 1,
      ...(h.slots ? { slots: h.slots } : {}),
      ...(h.listen ?? config.listen ? { listen: h.listen ?? config.listen } : {}),
    };
  });
}

/**
 * Option parsers shared by commands.
 *
 * @module
 */
import { parseBytes } from "../pool/health.ts";
import { InvalidArgumentError, Option } from "commander";
// Leaf modules, not the areas' mod.ts: every command's declaration loads this file.
import { formatHostPort, parseHostPort } from "../metrics/listen_address.ts";
import { accessSync, constants, statSync } from "node:fs";
import { resolve } from "node:path";

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Parses an integer option no smaller than `min`. */
export function intOption(min: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`"${value}" is not an integer ≥ ${min}.`);
    }
    return n;
  };
}

/** Parses a duration in seconds (fractions allowed) into milliseconds. */
export function secondsOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a number of seconds.`);
  return Math.round(n * 1000);
}

/**
 * A `<seconds>` option: parsed into milliseconds by {@linkcode secondsOption}, with its default given in
 * milliseconds and shown in seconds (`(default: 30)`, never the 30000 the code holds); `note` follows it.
 */
export function secondsFlag(flags: string, description: string, defaultMs?: number, note?: string): Option {
  const option = new Option(flags, description).argParser(secondsOption);
  if (defaultMs === undefined) return option;
  return option.default(defaultMs, `${defaultMs / 1000}${note ? `, ${note}` : ""}`);
}

/** Collects `key=value` pairs into a record. */
export function keyValue(value: string, previous: Record<string, string>): Record<string, string> {
  const i = value.indexOf("=");
  if (i < 1) throw new InvalidArgumentError(`"${value}" is not of the form name=value.`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

/** Parses the path of an executable file on this machine into an absolute path. */
export function executableFile(value: string): string {
  const file = resolve(value);
  try {
    accessSync(file, constants.X_OK);
    if (!statSync(file).isFile()) throw new Error("not a file");
  } catch {
    throw new InvalidArgumentError(`"${value}" is not an executable file (try chmod +x).`);
  }
  return file;
}

/** A parser of `HOST:PORT` listen addresses (port 0 picks a free one); `what` names it in errors. */
export function hostPortOption(what: string): (value: string) => string {
  return (value) => {
    try {
      const { host, port } = parseHostPort(value, what);
      return formatHostPort(host, port);
    } catch (err) {
      throw new InvalidArgumentError(`${(err as Error).message}.`);
    }
  };
}

/**
 * Parses a size: bytes, or a number with K, M, G or T — decimal (500MB = 500,000,000, as disks and DDS count)
 * unless written binary (16GiB = 16 × 1024³). One rule for every size option of the CLI.
 */
export function bytesOption(value: string): number {
  try {
    const n = parseBytes(value);
    if (Number.isSafeInteger(n)) return n;
  } catch { /* said below */ }
  throw new InvalidArgumentError(`"${value}" is not a size (write it like 500MB, 16GiB or 1048576).`);
}

/** Parses a number above 0 (a load average, a ratio). */
export function positiveNumberOption(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`"${text}" is not a positive number.`);
  return n;
}

/** `--priority P`: an integer, higher first. */
export function priorityOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || Math.abs(n) > 1_000_000) {
    throw new InvalidArgumentError(`"${value}" is not an integer between -1000000 and 1000000.`);
  }
  return n;
}

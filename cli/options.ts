/**
 * Option parsers shared by commands.
 *
 * @module
 */
import { InvalidArgumentError } from "commander";

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

/** Collects `key=value` pairs into a record. */
export function keyValue(value: string, previous: Record<string, string>): Record<string, string> {
  const i = value.indexOf("=");
  if (i < 1) throw new InvalidArgumentError(`"${value}" is not of the form name=value.`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

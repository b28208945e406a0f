// Test helpers: shoal's own DDS-format topologies in ./testdata (DDS's files are in
// tests/dds_conformance_test.ts, run when a DDS corpus is at hand).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Absolute path of a file in `topology/testdata`. */
export function testdataFile(name: string): string {
  return fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));
}

/** Text of a file in `topology/testdata`. */
export function testdataText(name: string): string {
  return readFileSync(testdataFile(name), "utf8");
}

/** `n` paths `${base}_0 … ${base}_${n-1}`. */
export function seq(base: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${base}_${i}`);
}

/** Deep equality, strict. */
export function assertEquals<T>(actual: T, expected: T, message = ""): void {
  assert.deepStrictEqual(actual, expected, message);
}
/** Deep inequality, strict. */
export function assertNotEquals<T>(actual: T, expected: T, message = ""): void {
  assert.notDeepStrictEqual(actual, expected, message);
}
/** Truthiness. */
export function assertOk(value: unknown, message = ""): asserts value {
  assert.ok(value, message);
}
/** Runs `fn`, expects it to throw an instance of `cls`, returns the error. */
export function assertThrows<E extends Error>(fn: () => unknown, cls: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (err) {
    if (err instanceof cls) return err;
    throw new Error(`Expected ${cls.name}, got ${err}`);
  }
  throw new Error(`Expected ${cls.name} to be thrown`);
}
/** Awaits `fn`, expects it to reject with an instance of `cls`, returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof cls) return err;
    throw new Error(`Expected ${cls.name}, got ${err}`);
  }
  throw new Error(`Expected ${cls.name} to be thrown`);
}

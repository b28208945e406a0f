/**
 * Assertions for tests, on top of `node:assert` (std's `@std/assert` is not on the npm registry).
 *
 * @module
 */
import assert from "node:assert/strict";

/** Asserts deep equality. */
export function assertEquals<T>(actual: unknown, expected: T, message?: string): asserts actual is T {
  assert.deepStrictEqual(actual, expected, message ?? "values are not deeply equal");
}

/** Asserts a truthy value. */
export function assert_(value: unknown, message?: string): asserts value {
  assert.ok(value, message ?? "expected a truthy value");
}
export { assert_ as assert };

/** Asserts that `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, message?: string): void {
  if (!text.includes(part)) {
    throw new assert.AssertionError({
      message: message ?? `Expected ${JSON.stringify(text)} to include ${JSON.stringify(part)}`,
    });
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E extends Error> = new (...args: any[]) => E;

/** Asserts that `fn` throws an instance of `cls`, and returns the error. */
export function assertThrows<E extends Error>(fn: () => unknown, cls: ErrorClass<E>): E {
  try {
    fn();
  } catch (err) {
    if (err instanceof cls) return err;
    throw new assert.AssertionError({ message: `Expected ${cls.name}, got ${String(err)}` });
  }
  throw new assert.AssertionError({ message: `Expected ${cls.name} to be thrown` });
}

/** Asserts that `fn` rejects with an instance of `cls`, and returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: ErrorClass<E>,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof cls) return err;
    throw new assert.AssertionError({ message: `Expected ${cls.name}, got ${String(err)}` });
  }
  throw new assert.AssertionError({ message: `Expected ${cls.name} to be thrown` });
}

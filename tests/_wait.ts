/**
 * Waiting helpers for tests: poll a condition with a deadline instead of sleeping.
 *
 * @module
 */

/** Options for {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this many milliseconds (default 10 s). */
  timeout?: number;
  /** Poll period (default 50 ms). */
  interval?: number;
  /** Describes what was awaited, for the timeout message. */
  what?: string;
  /** What was seen instead, appended to the timeout message (the state a failure in CI needs to be read). */
  detail?: () => string | Promise<string>;
}

/** Resolves once `cond` returns a truthy value (which is returned); rejects after the timeout. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeout = options.timeout ?? 10_000;
  const deadline = Date.now() + timeout;
  let last: unknown;
  while (true) {
    try {
      const value = await cond();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const seen = options.detail ? await Promise.resolve().then(options.detail).catch(String) : "";
      throw new Error(
        `Timed out after ${timeout} ms waiting for ${options.what ?? "a condition"}${
          seen ? `; saw:\n${seen}` : ""
        }`,
        last ? { cause: last } : undefined,
      );
    }
    await new Promise((r) => setTimeout(r, options.interval ?? 50));
  }
}

/**
 * Checks that `cond` holds at every poll until `until` returns a truthy value (which is returned): a claim
 * over a window that ends with an event, not at one instant. Rejects at the first poll where `cond` fails
 * (the check that saw `until` included), or after the timeout.
 */
export async function holdsUntil<T>(
  cond: () => unknown | Promise<unknown>,
  until: () => T | Promise<T>,
  options: WaitOptions & { holds?: string } = {},
): Promise<NonNullable<T>> {
  const timeout = options.timeout ?? 10_000;
  const deadline = Date.now() + timeout;
  while (true) {
    const value = await until();
    if (!(await cond())) {
      throw new Error(
        `${options.holds ?? "A condition"} stopped holding before ${options.what ?? "the end"}`,
      );
    }
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting for ${options.what ?? "a condition"}`);
    }
    await new Promise((r) => setTimeout(r, options.interval ?? 50));
  }
}

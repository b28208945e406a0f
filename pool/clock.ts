/**
 * The clock the pool's timers run on: the real one, or `tests/_fake_clock.ts` in unit tests.
 *
 * @module
 */

/** Time and repeating timers. */
export interface Clock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** The real clock; its timers do not keep the process alive. */
export const REAL_CLOCK: Clock = {
  now: () => Date.now(),
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

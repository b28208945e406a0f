/**
 * The clock the pool's timers run on: the real one, or {@linkcode FakeClock} in unit tests.
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

/** A clock that moves only when told to (`tick`), firing due intervals in order. */
export class FakeClock implements Clock {
  #now: number;
  #next = 1;
  readonly #timers = new Map<number, { fn: () => void; ms: number; due: number }>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { fn, ms, due: this.#now + ms });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Moves time on by `ms`, running every interval that falls due on the way. */
  tick(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers.entries()].sort((a, b) => a[1].due - b[1].due)[0];
      if (!due || due[1].due > end) break;
      this.#now = due[1].due;
      due[1].due += due[1].ms;
      due[1].fn();
    }
    this.#now = end;
  }
}

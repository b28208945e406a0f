/**
 * The one fake clock of the unit tests: time moves only when the test says (`tick`), and timeouts and
 * intervals fall due in order, each run at its own due time. It has the shape of every clock the runtime
 * takes (`SwimClock`, `CoalesceClock`, `CollClock`, `OrphanClock`, the pool's `Clock`).
 *
 * @module
 */

interface Timer {
  fn: () => void;
  due: number;
  /** Repeats this often (an interval); a timeout has none. */
  every?: number;
}

/** Time that moves only on `tick`, firing due timers in order. */
export class FakeClock {
  #now: number;
  #next = 1;
  /** Timers set and not yet fired or cleared (intervals stay until cleared). */
  readonly timers = new Map<number, Timer>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(this.#next, { fn, due: this.#now + ms });
    return this.#next++;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  setInterval(fn: () => void, ms: number): unknown {
    this.timers.set(this.#next, { fn, due: this.#now + ms, every: ms });
    return this.#next++;
  }

  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time on by `ms`, running every timer that falls due on the way, in order. */
  tick(ms: number): void {
    const end = this.#now + ms;
    for (let t = this.#due(end); t; t = this.#due(end)) t();
    this.#now = end;
  }

  /** Like {@linkcode tick}, letting promises settle after each timer and at the end. */
  async tickAsync(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (let t = this.#due(end); t; t = this.#due(end)) {
      t();
      await Promise.resolve();
    }
    this.#now = end;
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }

  /** The earliest timer due by `end`, made ready to run (time set to its due time), or undefined. */
  #due(end: number): (() => void) | undefined {
    let first: [number, Timer] | undefined;
    for (const e of this.timers) if (!first || e[1].due < first[1].due) first = e;
    if (!first || first[1].due > end) return undefined;
    const [id, t] = first;
    this.#now = t.due;
    if (t.every === undefined) this.timers.delete(id);
    else t.due += t.every;
    return t.fn;
  }
}

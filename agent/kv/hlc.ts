/**
 * A hybrid logical clock: versions that follow wall-clock time but never go backwards on one agent and
 * always move past every version the agent has seen, so "last write wins" means what a person expects.
 *
 * A version is a string `<wall ms, 15 digits>.<counter, 6 digits>`: comparing two versions as strings
 * compares them as clocks.
 *
 * @module
 */

/** One HLC reading. */
export interface HlcTime {
  wall: number;
  counter: number;
}

const VERSION_RE = /^(\d{15})\.(\d{6})$/;

/** The string form of a clock reading. */
export function formatVersion(t: HlcTime): string {
  return `${String(t.wall).padStart(15, "0")}.${String(t.counter).padStart(6, "0")}`;
}

/** Parses a version string; throws `RangeError` when it is not one. */
export function parseVersion(version: string): HlcTime {
  const m = VERSION_RE.exec(version);
  if (!m) throw new RangeError(`"${version}" is not a version (expected 15 digits, ".", 6 digits)`);
  return { wall: Number(m[1]), counter: Number(m[2]) };
}

/** True when `version` is a well-formed version string. */
export function isVersion(version: string): boolean {
  return VERSION_RE.test(version);
}

/** A hybrid logical clock. `now` is injectable for tests. */
export class HybridClock {
  #last: HlcTime = { wall: 0, counter: 0 };
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A new version, later than every one issued or observed before. */
  tick(): string {
    const wall = this.#now();
    if (wall > this.#last.wall) this.#last = { wall, counter: 0 };
    else this.#last = { wall: this.#last.wall, counter: this.#last.counter + 1 };
    return formatVersion(this.#last);
  }

  /** Moves the clock past a version received from elsewhere. */
  observe(version: string): void {
    const t = parseVersion(version);
    if (t.wall > this.#last.wall || (t.wall === this.#last.wall && t.counter > this.#last.counter)) {
      this.#last = t;
    }
  }
}

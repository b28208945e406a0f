/**
 * Idle exit: an agent the pool grew leaves the mesh and exits once it has held no lease, with nothing
 * waiting in the pool's queue, for `--idle-timeout` (DDS's default 1,800 s), so the pool shrinks when the
 * work ends and the RMS job with it. What counts as busy is the agent's to say (`busy`).
 *
 * @module
 */
import { type Clock, REAL_CLOCK } from "./clock.ts";

/** DDS's idle timeout: 30 minutes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 1_800_000;

/** Label with which a grown agent is told its idle timeout (milliseconds), through any RMS plug-in. */
export const IDLE_TIMEOUT_LABEL = "shoal.idle-timeout-ms";

/** Calls `onIdle` once when `busy()` has been false for `timeoutMs`. */
export class IdleWatch implements Disposable {
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #busy: () => boolean;
  readonly #onIdle: (idleMs: number) => void;
  #since: number;
  #timer: unknown;

  constructor(init: {
    timeoutMs: number;
    busy: () => boolean;
    onIdle: (idleMs: number) => void;
    clock?: Clock;
  }) {
    if (!(init.timeoutMs > 0)) {
      throw new RangeError(`Idle timeout "${init.timeoutMs}" must be more than 0 ms`);
    }
    this.#clock = init.clock ?? REAL_CLOCK;
    this.#timeoutMs = init.timeoutMs;
    this.#busy = init.busy;
    this.#onIdle = init.onIdle;
    this.#since = this.#clock.now();
    const period = Math.min(10_000, Math.max(200, Math.floor(init.timeoutMs / 10)));
    this.#timer = this.#clock.setInterval(() => this.#check(), period);
  }

  /** Notes activity now (a lease granted or freed). */
  touch(): void {
    this.#since = this.#clock.now();
  }

  /** Since when the agent has been idle (undefined while busy). */
  get idleSince(): number | undefined {
    return this.#busy() ? undefined : this.#since;
  }

  #check(): void {
    const now = this.#clock.now();
    if (this.#busy()) {
      this.#since = now;
      return;
    }
    if (now - this.#since < this.#timeoutMs) return;
    this.#clock.clearInterval(this.#timer);
    this.#onIdle(now - this.#since);
  }

  [Symbol.dispose](): void {
    this.#clock.clearInterval(this.#timer);
  }
}

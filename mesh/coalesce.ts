/**
 * The one coalescing publisher (the shape of serf's `coalesce_*.go`): items queued within a short window
 * go out together, split into messages of bounded size. One gossip message per task event, key-value write
 * or command would saturate gossipsub (≈1.5k deliveries/s per process) when a thousand tasks act at once.
 * Events, key-values and commands all publish through it.
 *
 * @module
 */

/** Timers of a {@linkcode Coalescer}; tests pass a fake one. */
export interface CoalesceClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_CLOCK: CoalesceClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** What a {@linkcode Coalescer} does with what it gathered. */
export interface CoalescerInit<T> {
  /**
   * Sends one message of items. A rejection is the caller's to handle: it is passed to `onError`, never
   * thrown at whoever queued the items.
   */
  publish: (items: T[]) => Promise<void>;
  /** What a failed publish lost (log it, or say in a comment why dropping it is right). */
  onError: (err: unknown, items: T[]) => void;
  /** Items queued within this many ms share a message. */
  windowMs: number;
  /**
   * `trailing` (default): a message goes `windowMs` after the first item of a quiet spell. `leading`: the
   * first item after a quiet window goes at the next turn of the event loop, later ones wait until
   * `windowMs` after the last message (a lone write is not delayed).
   */
  mode?: "trailing" | "leading";
  /** Bytes an item takes in a message, and the most per message (default: one message for all). */
  sizeOf?: (item: T) => number;
  maxBytes?: number;
  clock?: CoalesceClock;
}

/** Gathers items and publishes them in coalesced, size-bounded messages. */
export class Coalescer<T> implements AsyncDisposable {
  readonly #init: CoalescerInit<T>;
  readonly #clock: CoalesceClock;
  #pending: T[] = [];
  #timer: unknown;
  #lastFlush = -Infinity;
  #stopped = false;

  constructor(init: CoalescerInit<T>) {
    this.#init = init;
    this.#clock = init.clock ?? REAL_CLOCK;
  }

  /** Items queued and not yet published. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Queues an item; after {@linkcode stop} it is published at once. */
  add(item: T): void {
    this.#pending.push(item);
    if (this.#stopped) return void this.flush();
    if (this.#timer !== undefined) return;
    const wait = this.#init.mode === "leading"
      ? Math.max(0, this.#lastFlush + this.#init.windowMs - this.#clock.now())
      : this.#init.windowMs;
    this.#timer = this.#clock.setTimeout(() => void this.flush(), wait);
  }

  /** Publishes everything queued now, in messages of at most `maxBytes`. Never rejects. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lastFlush = this.#clock.now();
    if (this.#pending.length === 0) return;
    const all = this.#pending;
    this.#pending = [];
    const { sizeOf, maxBytes } = this.#init;
    let batch: T[] = [];
    let bytes = 0;
    const send = async () => {
      if (batch.length === 0) return;
      const items = batch;
      batch = [];
      bytes = 0;
      await this.#init.publish(items).catch((err) => this.#init.onError(err, items));
    };
    for (const item of all) {
      const size = sizeOf?.(item) ?? 0;
      if (maxBytes !== undefined && bytes + size > maxBytes) await send();
      batch.push(item);
      bytes += size;
    }
    await send();
  }

  /** Publishes what is queued and owns no timer from then on. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.flush();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

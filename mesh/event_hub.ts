/**
 * A multicast of events: listeners get every event pushed after they subscribed, as an `AsyncIterable`.
 *
 * @module
 */

/** Fans events out to any number of async iterators and callbacks. */
export class EventHub<T> {
  readonly #listeners = new Set<(event: T) => void>();

  /** Delivers an event to every current listener. */
  emit(event: T): void {
    for (const l of this.#listeners) l(event);
  }

  /** Calls `listener` for every event; returns a function that stops it. */
  on(listener: (event: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Iterates over events until `signal` aborts or the loop breaks. */
  async *iterate(options: { signal?: AbortSignal } = {}): AsyncGenerator<T> {
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    const off = this.on((event) => {
      queue.push(event);
      wake?.();
    });
    const onAbort = () => wake?.();
    options.signal?.addEventListener("abort", onAbort);
    try {
      while (!options.signal?.aborted) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      off();
      options.signal?.removeEventListener("abort", onAbort);
    }
  }
}

/**
 * Calls that coalesce: the first goes out at once (on the next microtask, with whatever else this turn
 * issued); those made while a request is in flight wait and go out together in the next one. A task that
 * answers commands one by one pays one request per reply when the agent keeps up, and one request per
 * burst when it does not, so its cost per reply falls as the rate rises.
 *
 * @module
 */

interface Item<I, R> {
  input: I;
  size: number;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
}

/** One result per input, in order: a value or the error for that input alone. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** Options for {@linkcode coalesced}. */
export interface CoalesceOptions {
  /** Most inputs per request (default 256). */
  maxItems?: number;
  /** Most summed `sizeOf` per request (default 4 MiB); a single larger input goes alone. */
  maxBytes?: number;
}

/**
 * Wraps `sendBatch` (one request for many inputs, one outcome each, in order) as a per-input call. A
 * failed request rejects every input in it; an input whose signal aborted before its request went out is
 * rejected with the signal's reason and not sent.
 */
export function coalesced<I, R>(
  sendBatch: (inputs: I[]) => Promise<Outcome<R>[]>,
  sizeOf: (input: I) => number,
  options: CoalesceOptions = {},
): (input: I, signal?: AbortSignal) => Promise<R> {
  const maxItems = options.maxItems ?? 256;
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  const queue: Item<I, R>[] = [];
  let busy = false;

  const take = (): Item<I, R>[] => {
    const batch: Item<I, R>[] = [];
    let bytes = 0;
    while (queue.length > 0 && batch.length < maxItems) {
      const next = queue[0]!;
      if (next.signal?.aborted) {
        queue.shift();
        next.reject(next.signal.reason);
        continue;
      }
      if (batch.length > 0 && bytes + next.size > maxBytes) break;
      queue.shift();
      bytes += next.size;
      batch.push(next);
    }
    return batch;
  };

  const pump = async () => {
    busy = true;
    try {
      for (let batch = take(); batch.length > 0; batch = take()) {
        try {
          const outcomes = await sendBatch(batch.map((b) => b.input));
          for (const [i, b] of batch.entries()) {
            const o = outcomes[i];
            if (!o) b.reject(new Error("The agent gave no result for this call"));
            else if (o.ok) b.resolve(o.value);
            else b.reject(o.error);
          }
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      busy = false;
    }
  };

  return (input, signal) => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<R>((resolve, reject) => {
      queue.push({ input, size: sizeOf(input), resolve, reject, ...(signal ? { signal } : {}) });
      if (!busy) {
        busy = true;
        queueMicrotask(() => void pump());
      }
    });
  };
}

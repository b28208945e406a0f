/**
 * One component model for long-lived parts (js-libp2p's `Startable` and `start(...objs)`): a factory builds a
 * part from the narrow collaborators it needs and does no work; {@linkcode startAll} starts a list of parts in
 * order and {@linkcode stopAll} stops them in reverse, so that a part only uses parts listed before it.
 *
 * @module
 */

/** A long-lived part: built without side effects, started and stopped by its owner. */
export interface Startable {
  /** Shown in logs and errors when the part fails to start or stop. */
  readonly name: string;
  /** Starts the part; called once, in list order. */
  start(signal?: AbortSignal): void | Promise<void>;
  /** Called in list order once every part started. */
  afterStart?(): void | Promise<void>;
  /** Called in reverse order before any part stops. */
  beforeStop?(): void | Promise<void>;
  /** Stops the part and clears every timer and listener it owns. Idempotent. */
  stop(): void | Promise<void>;
}

/** Thrown by {@linkcode stopAll} when some parts failed to stop (every other part was stopped). */
export class StopError extends AggregateError {
  /** Names of the parts whose stop failed. */
  readonly parts: string[];
  constructor(failures: { part: string; error: unknown }[]) {
    super(
      failures.map((f) => f.error),
      `Parts "${failures.map((f) => f.part).join('", "')}" failed to stop; what they held may be left behind`,
    );
    this.name = "StopError";
    this.parts = failures.map((f) => f.part);
  }
}

/** Options of {@linkcode startAll} and {@linkcode stopAll}. */
export interface LifecycleOptions {
  /** Told of each part that failed to stop, with the error (besides the {@linkcode StopError}). */
  onStopError?: (part: string, error: unknown) => void;
}

/**
 * Starts `parts` in order, then calls their `afterStart`. When one fails (or `signal` aborts), the parts
 * already started are stopped in reverse order and the error is thrown.
 *
 * @example
 * ```ts
 * await startAll([store, server], AbortSignal.timeout(10_000));
 * await stopAll([store, server]); // server first
 * ```
 */
export async function startAll(
  parts: readonly Startable[],
  signal?: AbortSignal,
  options: LifecycleOptions = {},
): Promise<void> {
  const started: Startable[] = [];
  try {
    for (const part of parts) {
      signal?.throwIfAborted();
      started.push(part);
      await part.start(signal);
    }
    for (const part of parts) await part.afterStart?.();
  } catch (err) {
    await stopAll(started, options).catch(() => {/* reported through onStopError; the start error wins */});
    throw err;
  }
}

/**
 * Stops `parts` in reverse order: every `beforeStop`, then every `stop`. Each one runs even if another threw;
 * the failures are thrown together as a {@linkcode StopError}.
 */
export async function stopAll(parts: readonly Startable[], options: LifecycleOptions = {}): Promise<void> {
  const failures: { part: string; error: unknown }[] = [];
  const run = async (part: Startable, step: () => void | Promise<void>) => {
    try {
      await step();
    } catch (error) {
      failures.push({ part: part.name, error });
      options.onStopError?.(part.name, error);
    }
  };
  const reversed = [...parts].reverse();
  for (const part of reversed) if (part.beforeStop) await run(part, () => part.beforeStop!());
  for (const part of reversed) await run(part, () => part.stop());
  if (failures.length) throw new StopError(failures);
}

/**
 * Makes a part's `stop` idempotent (later calls share the first) and adds `[Symbol.asyncDispose]`.
 *
 * @example
 * ```ts
 * await using timer = startable({ name: "tick", start() {...}, stop() {...} });
 * ```
 */
export function startable<T extends Startable>(part: T): T & AsyncDisposable {
  let stopping: Promise<void> | undefined;
  const stop = part.stop.bind(part);
  const stopOnce = () => (stopping ??= (async () => await stop())());
  return Object.assign(part, { stop: stopOnce, [Symbol.asyncDispose]: stopOnce });
}

/** A part around a service that a `start*` function opens: {@linkcode Service.get} gives it once started. */
export interface Service<T> extends Startable, AsyncDisposable {
  /** The running service; throws before `start`. */
  get(): T;
}

/**
 * Wraps an `open` function (which builds and starts a service) and its `close` into a {@linkcode Startable}:
 * nothing happens until `start`, `stop` closes once and only what was opened.
 *
 * @example
 * ```ts
 * const stage = service("stage", () => startStageService(init), (s) => s.stop());
 * ```
 */
export function service<T>(
  name: string,
  open: (signal?: AbortSignal) => T | Promise<T>,
  close: (value: T) => unknown,
): Service<T> {
  let value: { v: T } | undefined;
  return startable({
    name,
    async start(signal?: AbortSignal) {
      value ??= { v: await open(signal) };
    },
    async stop() {
      if (value) await close(value.v);
    },
    get(): T {
      if (!value) throw new Error(`Part "${name}" is used before it started; list it after what it needs`);
      return value.v;
    },
  });
}

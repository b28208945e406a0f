/**
 * Reaching the mesh: dial the bootstrap addresses until a connection stands, keep retrying with backoff
 * while none does (the bootstrap peers may not be up yet), and again whenever this peer is cut off.
 *
 * @module
 */
import type { MeshNode } from "./node.ts";

/** Options for {@linkcode startBootstrap}. */
export interface BootstrapInit {
  node: MeshNode;
  /** Multiaddrs with `/p2p/<id>`; addresses of this peer itself are skipped. */
  addrs: string[];
  /** Called once the first connection stands. */
  onJoined?: () => void;
  /** Called when a round of dials failed, with the delay before the next. */
  onRetry?: (errors: { addr: string; error: string }[], nextInMs: number) => void;
  /** First retry delay (default 250 ms), doubled up to `maxRetryMs` (default 5 s). */
  minRetryMs?: number;
  maxRetryMs?: number;
}

/** A running bootstrap loop. */
export class Bootstrap implements AsyncDisposable {
  readonly #init: BootstrapInit;
  readonly #abort = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #joined = false;
  #resolveJoined!: () => void;
  /** Resolves once this peer is connected to the mesh. */
  readonly joined: Promise<void> = new Promise((r) => (this.#resolveJoined = r));

  constructor(init: BootstrapInit) {
    this.#init = init;
  }

  /** True once connected (or nothing to dial). */
  get isJoined(): boolean {
    return this.#joined;
  }

  /** Starts dialling. */
  start(): void {
    const own = this.#init.node.peerId;
    const targets = this.#init.addrs.filter((a) => !a.endsWith(`/p2p/${own}`));
    if (targets.length === 0) {
      this.#markJoined();
      return;
    }
    const min = this.#init.minRetryMs ?? 250;
    const max = this.#init.maxRetryMs ?? 5_000;
    let delay = min;
    const round = async () => {
      if (this.#abort.signal.aborted) return;
      if (this.#init.node.libp2p.getConnections().length === 0) {
        const errors: { addr: string; error: string }[] = [];
        const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(5_000)]);
        await Promise.all(targets.map((addr) =>
          this.#init.node.dial(addr, { signal }).catch((err) => {
            errors.push({ addr, error: err instanceof Error ? err.message : String(err) });
          })
        ));
        if (this.#abort.signal.aborted) return;
        if (errors.length < targets.length) {
          delay = min;
          this.#markJoined();
        } else {
          this.#init.onRetry?.(errors, delay);
          this.#timer = setTimeout(round, delay);
          delay = Math.min(delay * 2, max);
          return;
        }
      } else {
        this.#markJoined();
      }
      this.#timer = setTimeout(round, max);
    };
    void round();
  }

  #markJoined(): void {
    if (this.#joined) return;
    this.#joined = true;
    this.#resolveJoined();
    this.#init.onJoined?.();
  }

  /** Stops dialling. Idempotent. */
  stop(): void {
    this.#abort.abort();
    clearTimeout(this.#timer);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.stop();
    return Promise.resolve();
  }
}

/** Creates and starts a bootstrap loop. */
export function startBootstrap(init: BootstrapInit): Bootstrap {
  const b = new Bootstrap(init);
  b.start();
  return b;
}

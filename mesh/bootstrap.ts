/**
 * Reaching the mesh: dial the bootstrap addresses until a connection stands, keep retrying with backoff
 * while none does (the bootstrap peers may not be up yet), and again whenever this peer is cut off. A round
 * dials at most {@linkcode BOOTSTRAP_FANOUT} of the peers given, picked at random (the next ones after a
 * failed round): given every agent's address, 100 joiners all dialling the same first peers made that peer
 * the hub of the mesh's whole start-up, starved it on a shared machine and got it declared dead.
 *
 * @module
 */
import type { MeshNode } from "./node.ts";

/** Bootstrap peers dialled per round. */
export const BOOTSTRAP_FANOUT = 3;

/** The peer ID of a `/p2p/` multiaddr (the address itself when it names none). */
function peerOf(addr: string): string {
  const at = addr.lastIndexOf("/p2p/");
  return at < 0 ? addr : addr.slice(at + 5);
}

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
    const byPeer = new Map<string, string[]>();
    for (const a of this.#init.addrs) {
      if (a.endsWith(`/p2p/${own}`)) continue;
      const list = byPeer.get(peerOf(a)) ?? [];
      list.push(a);
      byPeer.set(peerOf(a), list);
    }
    const peers = [...byPeer.values()];
    for (let i = peers.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [peers[i], peers[j]] = [peers[j]!, peers[i]!];
    }
    if (peers.length === 0) {
      this.#markJoined();
      return;
    }
    let cursor = 0;
    /** The next peers to try, each with its addresses (dialled in turn until one answers). */
    const nextPeers = () => {
      const n = Math.min(BOOTSTRAP_FANOUT, peers.length);
      const out = Array.from({ length: n }, (_, i) => peers[(cursor + i) % peers.length]!);
      cursor = (cursor + n) % peers.length;
      return out;
    };
    const min = this.#init.minRetryMs ?? 250;
    const max = this.#init.maxRetryMs ?? 5_000;
    let delay = min;
    const round = async () => {
      if (this.#abort.signal.aborted) return;
      if (this.#init.node.libp2p.getConnections().length === 0) {
        const errors: { addr: string; error: string }[] = [];
        const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(5_000)]);
        const reached = await Promise.all(
          nextPeers().map(async (addrs) => {
            for (const addr of addrs) {
              try {
                await this.#init.node.dial(addr, { signal });
                return true;
              } catch (err) {
                errors.push({ addr, error: err instanceof Error ? err.message : String(err) });
              }
            }
            return false;
          }),
        );
        if (this.#abort.signal.aborted) return;
        if (reached.includes(true)) {
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

/**
 * Coalesces events into one gossip message per short tick: one message per task event would saturate
 * gossipsub (≈1.5k deliveries/s per process) when a thousand tasks start at once.
 *
 * @module
 */
import { EVENTS_TOPIC, type MeshNode } from "../mesh/mod.ts";

/** Publishes `{type: "batch", at, by, events}` at most every `tickMs`. */
export class EventBatcher {
  readonly #node: MeshNode;
  readonly #tickMs: number;
  #pending: Record<string, unknown>[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(node: MeshNode, tickMs = 50) {
    this.#node = node;
    this.#tickMs = tickMs;
  }

  /** Queues an event. */
  add(event: Record<string, unknown>): void {
    this.#pending.push(event);
    this.#timer ??= setTimeout(() => void this.flush(), this.#tickMs);
  }

  /** Publishes what is queued now. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const events = this.#pending;
    this.#pending = [];
    // Events are for monitors and logs, best effort by design: a publish fails only while the node stops.
    await this.#node.publish(EVENTS_TOPIC, { type: "batch", at: Date.now(), by: this.#node.peerId, events })
      .catch(() => {});
  }
}

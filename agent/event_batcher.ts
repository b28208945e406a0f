/**
 * Events go out coalesced, one gossip message per short window (`mesh/coalesce.ts`): one message per task
 * event would saturate gossipsub (≈1.5k deliveries/s per process) when a thousand tasks start at once.
 *
 * Two audiences. What other agents act on (a task that ended for good, a failure, lost and abandoned tasks,
 * environment and agent events) goes to every agent on `EVENTS_TOPIC`. What only people and tools read
 * (a task started, an exit it restarts from, the exits of a topology stopped as a whole: every agent learns
 * of that stop from its record) goes on `TASK_EVENTS_TOPIC`, which agents do not forward: it reaches the
 * tools connected to this agent, whatever the size of the mesh.
 *
 * @module
 */
import { Coalescer, EVENTS_TOPIC, type MeshNode, TASK_EVENTS_TOPIC } from "../mesh/mod.ts";
import type { BatchedEvent, EventMessage } from "./wire/mod.ts";

/** Whether only tools read `e` (see the module's comment); `wholeStop` marks exits of a whole topology's stop. */
export function forToolsOnly(e: BatchedEvent, wholeStop = false): boolean {
  if (e.type === "task:started") return true;
  if (e.type === "task:exited") return e.willRestart || (e.stopped && wholeStop);
  return false;
}

/** Publishes `{type: "batch", at, by, events}` at most every `tickMs`, on the topic of each event's audience. */
export class EventBatcher implements AsyncDisposable {
  readonly #mesh: Coalescer<BatchedEvent>;
  readonly #tools: Coalescer<BatchedEvent>;

  constructor(node: Pick<MeshNode, "peerId" | "publish">, tickMs = 50) {
    const on = (topic: string) =>
      new Coalescer<BatchedEvent>({
        publish: (events) =>
          node.publish(
            topic,
            { type: "batch", at: Date.now(), by: node.peerId, events } satisfies EventMessage,
          ),
        // Events are for monitors and logs, best effort by design: a publish fails only while the node stops.
        onError: () => {},
        windowMs: tickMs,
      });
    this.#mesh = on(EVENTS_TOPIC);
    this.#tools = on(TASK_EVENTS_TOPIC);
  }

  /** Queues an event for its audience; `wholeStop`: an exit of a task whose whole topology is stopping. */
  add(e: BatchedEvent, options: { wholeStop?: boolean } = {}): void {
    (forToolsOnly(e, options.wholeStop) ? this.#tools : this.#mesh).add(e);
  }

  /** Events queued and not yet published. */
  get pending(): number {
    return this.#mesh.pending + this.#tools.pending;
  }

  /** Publishes everything queued now. Never rejects. */
  async flush(): Promise<void> {
    await Promise.all([this.#mesh.flush(), this.#tools.flush()]);
  }

  /** Publishes what is queued and owns no timer from then on. Idempotent. */
  async stop(): Promise<void> {
    await Promise.all([this.#mesh.stop(), this.#tools.stop()]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

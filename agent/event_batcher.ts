/**
 * Events go out coalesced, one gossip message per short window (`mesh/coalesce.ts`): one message per task
 * event would saturate gossipsub (≈1.5k deliveries/s per process) when a thousand tasks start at once.
 *
 * @module
 */
import { Coalescer, EVENTS_TOPIC, type MeshNode } from "../mesh/mod.ts";
import type { BatchedEvent, EventMessage } from "./wire/mod.ts";

/** Publishes `{type: "batch", at, by, events}` at most every `tickMs`. */
export class EventBatcher extends Coalescer<BatchedEvent> {
  constructor(node: MeshNode, tickMs = 50) {
    super({
      publish: (events) =>
        node.publish(
          EVENTS_TOPIC,
          { type: "batch", at: Date.now(), by: node.peerId, events } satisfies EventMessage,
        ),
      // Events are for monitors and logs, best effort by design: a publish fails only while the node stops.
      onError: () => {},
      windowMs: tickMs,
    });
  }
}

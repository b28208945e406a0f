/**
 * A tool that reads every agent's own events (`TASK_EVENTS_TOPIC`: agents do not forward it) connects to
 * every alive agent, and to each that joins later. The cost is the tool's (one connection per agent); an
 * agent pays one connection per tool, whatever the size of the mesh.
 *
 * @module
 */
import { peerIdFromString } from "@libp2p/peer-id";
import type { Membership } from "./membership.ts";
import type { MeshNode } from "./node.ts";

/** What {@linkcode followEveryAgent} returns. */
export interface AgentFollower extends Disposable {
  /**
   * Resolves once every agent alive in the first view is connected and its subscriptions arrived (from then
   * on it sends this tool the topic's messages), or after `readyTimeoutMs` with those that were.
   */
  readonly ready: Promise<void>;
  /** Agents connected and heard from. */
  readonly followed: ReadonlySet<string>;
}

/** Options of {@linkcode followEveryAgent}. */
export interface FollowOptions {
  /** A topic the agents subscribe to: their subscription's arrival shows their gossip stream is up. */
  topic: string;
  /** Dials at once (default 16). */
  concurrency?: number;
  /** Longest wait for {@linkcode AgentFollower.ready} (default 10 s). */
  readyTimeoutMs?: number;
}

/** Connects `node` (a light peer) to every agent of `membership`'s view, now and as they join. */
export function followEveryAgent(
  node: MeshNode,
  membership: Pick<Membership, "members" | "events">,
  options: FollowOptions,
): AgentFollower {
  const pubsub = node.libp2p.services.pubsub;
  const followed = new Set<string>();
  const dialling = new Set<string>();
  const queue: string[] = [];
  const concurrency = options.concurrency ?? 16;
  const first = membership.members().filter((m) => m.state === "alive" && m.id !== node.peerId).map((m) =>
    m.id
  );
  const waiting = new Set(first);
  let closed = false;
  const { promise: ready, resolve } = Promise.withResolvers<void>();
  const timer = setTimeout(resolve, options.readyTimeoutMs ?? 10_000);
  const heard = (peer: string) => {
    if (followed.has(peer)) return;
    followed.add(peer);
    waiting.delete(peer);
    if (waiting.size === 0) resolve();
  };
  const onSubscription = (
    evt: CustomEvent<{ peerId: { toString(): string }; subscriptions: { topic: string }[] }>,
  ) => {
    if (evt.detail.subscriptions.some((s) => s.topic === options.topic)) heard(evt.detail.peerId.toString());
  };
  pubsub.addEventListener("subscription-change", onSubscription as EventListener);
  const pump = () => {
    while (!closed && dialling.size < concurrency && queue.length > 0) {
      const id = queue.shift()!;
      dialling.add(id);
      void (async () => {
        try {
          const addrs = membership.members().find((m) => m.id === id)?.addrs ?? [];
          await node.learnAddresses(id, addrs);
          await node.libp2p.dial(peerIdFromString(id), { signal: AbortSignal.timeout(5_000) });
          // Already subscribed before this call (a connection the tool had): no change event comes.
          if (pubsub.getSubscribers(options.topic).some((p) => p.toString() === id)) heard(id);
        } catch {
          // Unreachable now: its events are missed until the membership says it is back.
          waiting.delete(id);
          if (waiting.size === 0) resolve();
        } finally {
          dialling.delete(id);
          pump();
        }
      })();
    }
  };
  const follow = (id: string) => {
    if (closed || id === node.peerId || followed.has(id) || dialling.has(id) || queue.includes(id)) return;
    queue.push(id);
    pump();
  };
  if (waiting.size === 0) resolve();
  first.forEach(follow);
  const off = membership.events.on((e) => {
    if (e.type === "agent:joined" || e.type === "agent:alive") follow(e.id);
    if (e.type === "agent:dead" || e.type === "agent:left") followed.delete(e.id);
  });
  return {
    ready: ready.finally(() => clearTimeout(timer)),
    followed,
    [Symbol.dispose]() {
      closed = true;
      clearTimeout(timer);
      resolve();
      off();
      pubsub.removeEventListener("subscription-change", onSubscription as EventListener);
    },
  };
}

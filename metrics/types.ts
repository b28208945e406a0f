/**
 * What the agent metrics read: narrow views of the agent's parts, so that this area depends on none of
 * them (the agent wires them in `agent/agent.ts`).
 *
 * @module
 */

/** Something that calls listeners with events (an `EventHub`). */
export interface Events<T> {
  on(listener: (event: T) => void): () => void;
}

/** The runner events the metrics count. */
export type RunnerEventLike =
  | { type: "task:started"; id: string; restarts: number; at: number }
  | {
    type: "task:exited";
    id: string;
    code: number | null;
    signal: string | null;
    willRestart: boolean;
    stopped: boolean;
    at: number;
  }
  | { type: "task:failed"; id: string; at: number };

/** A gossip message as libp2p's pubsub hands it over. */
export interface PubsubLike {
  addEventListener(
    type: "message",
    listener: (evt: CustomEvent<{ topic: string; data: Uint8Array }>) => void,
  ): void;
  removeEventListener(
    type: "message",
    listener: (evt: CustomEvent<{ topic: string; data: Uint8Array }>) => void,
  ): void;
}

/** The parts of an agent that {@linkcode createAgentMetrics} reads. */
export interface MetricsSources {
  /** Current states of this agent's tasks, read on each scrape. */
  tasks: () => Iterable<{ state: string }>;
  runnerEvents: Events<RunnerEventLike>;
  /** Leases granted and refused by reason since start. */
  leases: () => { granted: number; refused: Record<string, number> };
  slots: () => { total: number; free: number };
  /** Every key-value entry merged into the replica (local writes and remote ones). */
  kvChanges: Events<{ sender: string; version: string }>;
  /** Custom commands delivered to a local task, and to the agent itself. */
  commandsToTasks: Events<unknown>;
  commandsToAgent: Events<unknown>;
  /** Gossip received (libp2p pubsub). */
  pubsub: PubsubLike;
  /** Gossip this agent published, with payload sizes. */
  published: Events<{ topic: string; bytes: number }>;
  /** Open connections, read on each scrape. */
  connections: () => number;
  /** Connection events since start. */
  connectionCounts: () => { opened: number; closed: number; dialled: number };
  /** Members of the agent's view, read on each scrape. */
  members: () => Iterable<{ state: string }>;
  /** Membership protocol messages since start. */
  swim: () => { sent: number; received: number } | undefined;
}

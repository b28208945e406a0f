/**
 * When an agent dies, the tasks it ran are reported lost and placed elsewhere if slots allow. One agent
 * acts — the alive agent with the lowest peer ID, so every agent agrees without talking — as commander
 * with a higher epoch.
 *
 * @module
 */
import type { Membership, MeshNode } from "../mesh/mod.ts";
import { recoverTopology } from "./commander.ts";
import type { DesiredState } from "./desired_state.ts";
import type { EventBatcher } from "./event_batcher.ts";
import type { Logger } from "./log.ts";

/** What failover needs. */
export interface FailoverInit {
  node: MeshNode;
  membership: Membership;
  desired: DesiredState;
  events: EventBatcher;
  log: Logger;
  sessionId: string;
}

/** Watches for dead agents; returns a function that stops watching. */
export function watchLostAgents(init: FailoverInit): () => void {
  const { node, membership, desired, events, log } = init;
  return membership.events.on((e) => {
    if (e.type !== "agent:dead") return;
    const alive = membership.members().filter((m) => m.state === "alive").map((m) => m.id).sort();
    if (alive[0] !== node.peerId) return;
    for (const record of desired.records()) {
      const paths = record.state === "active" ? record.placement[e.id] : undefined;
      if (!paths?.length) continue;
      log.warn("agent died; re-placing its tasks", { agent: e.id, topology: record.id, tasks: paths.length });
      events.add({ type: "tasks:lost", at: Date.now(), topologyId: record.id, agent: e.id, paths });
      recoverTopology({ node, via: node.peerId, sessionId: init.sessionId }, record, e.id).then((r) => {
        log.info("tasks re-placed", { topology: r.topologyId, placed: r.placed.length, lost: r.lost.length });
        events.add({
          type: "tasks:replaced",
          at: Date.now(),
          topologyId: r.topologyId,
          epoch: r.epoch,
          placed: r.placed.map((t) => ({ path: t.path, agent: t.agent, state: t.state })),
          lost: r.lost,
          reasons: r.reasons,
        });
      }).catch((err) =>
        log.error("re-placing tasks failed", { topology: record.id, reason: (err as Error).message })
      );
    }
  });
}

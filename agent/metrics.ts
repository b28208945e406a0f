/**
 * Wires an agent's parts into its Prometheus metrics (`metrics/`) and serves them (`--metrics`).
 *
 * @module
 */
import type { Membership, MeshNode } from "../mesh/mod.ts";
import { createAgentMetrics, type MetricsServer, startMetricsServer } from "../metrics/mod.ts";
import type { TaskRunner } from "./runner/mod.ts";
import type { SlotTable } from "./leases/mod.ts";
import type { Talk } from "./talk.ts";

/** Starts the metrics endpoint of an agent on `listen` (`HOST:PORT`, port 0 picks one). */
export async function serveAgentMetrics(
  listen: string,
  parts: { node: MeshNode; membership: Membership; runner: TaskRunner; slots: SlotTable; talk: Talk },
): Promise<MetricsServer> {
  const { node, membership, runner, slots, talk } = parts;
  const metrics = createAgentMetrics({
    tasks: () => runner.list(),
    runnerEvents: runner.events,
    leases: () => slots.leaseCounts,
    slots: () => ({ total: slots.total, free: slots.free }),
    kvChanges: talk.kv.changes,
    commandsToTasks: talk.commands.delivered,
    published: node.published,
    commandsToAgent: talk.commands.toAgent,
    pubsub: node.libp2p.services.pubsub as unknown as Parameters<typeof createAgentMetrics>[0]["pubsub"],
    connections: () => node.libp2p.getConnections().length,
    connectionCounts: () => membership.connectionCounts,
    members: () => membership.members(),
    swim: () => membership.swim?.counters,
  });
  try {
    const server = await startMetricsServer({ listen, metrics });
    const close = async () => {
      metrics.close();
      await server.close();
    };
    return { address: server.address, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    metrics.close();
    throw err;
  }
}

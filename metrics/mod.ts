/**
 * Prometheus metrics of an agent: what to count ({@linkcode createAgentMetrics}) and where to serve it
 * ({@linkcode startMetricsServer}).
 *
 * @example
 * ```ts
 * import { createAgentMetrics, startMetricsServer } from "./mod.ts";
 * const metrics = createAgentMetrics(sources);
 * await using server = await startMetricsServer({ listen: "127.0.0.1:0", metrics });
 * ```
 *
 * @module
 */
export { createAgentMetrics } from "./agent_metrics.ts";
export type { AgentMetrics } from "./agent_metrics.ts";
export { MetricsListenError } from "./errors.ts";
export { formatHostPort, parseHostPort } from "./listen_address.ts";
export { startMetricsServer } from "./server.ts";
export type { MetricsServer, MetricsServerInit } from "./server.ts";
export { METRICS_LABEL, prometheusTargets } from "./discovery.ts";
export type { Events, MetricsSources, PubsubLike, RunnerEventLike } from "./types.ts";

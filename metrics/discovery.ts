/**
 * How scrapers find agents' metrics: each agent announces its bound address as a reserved member label,
 * so any peer's view lists every agent's endpoint; `shoal info --prometheus-sd` turns that into
 * Prometheus file-based service discovery.
 *
 * @module
 */

/** The member label carrying an agent's metrics `host:port`. */
export const METRICS_LABEL = "shoal.metrics";

/** Prometheus `file_sd_configs` JSON: one target group per alive agent that serves metrics. */
export function prometheusTargets(
  agents: { id: string; host: string; state: string; metrics?: string }[],
  session: string,
): { targets: string[]; labels: Record<string, string> }[] {
  return agents.filter((a) => a.metrics && a.state === "alive").map((a) => ({
    targets: [a.metrics!],
    labels: { shoal_session: session, shoal_agent: a.id, shoal_host: a.host },
  }));
}

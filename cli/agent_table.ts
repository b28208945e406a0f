/**
 * The session's agents as `shoal info` and `shoal up` print them: JSON rows and a table.
 *
 * @module
 */
import type { Member } from "../mesh/mod.ts";
import { METRICS_LABEL } from "../metrics/mod.ts";
import { HEALTH_LABEL } from "../pool/mod.ts";
import { duration, shortId, table } from "./format.ts";

/** An agent as `info --json` prints it. */
export interface AgentRow {
  id: string;
  host: string;
  state: string;
  slots: { total: number; free: number };
  load: number;
  version: string;
  uptimeMs: number;
  /** For dead or departed agents: time since this peer last heard of them. */
  goneForMs?: number;
  addrs: string[];
  group: string;
  /** The agent's Prometheus endpoint (`HOST:PORT`), when it serves one (`--metrics`). */
  metrics?: string;
  /** Why the agent takes no leases now (disk, load: `--min-free-disk`, `--max-load`); absent while it does. */
  unhealthy?: string;
}

/** Turns members into rows for JSON output. */
export function agentRows(members: Member[], now = Date.now()): AgentRow[] {
  return members.map((m) => ({
    id: m.id,
    host: m.host,
    state: m.state,
    slots: m.slots,
    load: m.load,
    version: m.version,
    uptimeMs: m.state === "alive" || m.state === "suspect" ? Math.max(0, now - m.startedAt) : 0,
    ...(m.state === "dead" || m.state === "left" ? { goneForMs: Math.max(0, now - m.lastSeen) } : {}),
    addrs: m.addrs,
    group: m.group,
    ...(m.labels[METRICS_LABEL] ? { metrics: m.labels[METRICS_LABEL] } : {}),
    ...(m.labels[HEALTH_LABEL] ? { unhealthy: m.labels[HEALTH_LABEL] } : {}),
  }));
}

/** Prints members as a table. */
export function printAgents(members: Member[], now = Date.now()): void {
  const rows = members.map((m) => [
    m.id,
    m.host,
    m.state,
    `${m.slots.free}/${m.slots.total}`,
    m.load.toFixed(2),
    m.version,
    m.state === "alive" || m.state === "suspect"
      ? duration(Math.max(0, now - m.startedAt))
      : m.lastSeen > 0
      ? `— (${m.state} ${duration(Math.max(0, now - m.lastSeen))} ago)`
      : "—",
  ]);
  const wide = (process.stdout.columns ?? 120) >= 120;
  if (!wide) { for (const r of rows) r[0] = shortId(String(r[0])); }
  process.stdout.write(
    table(["ID", "HOST", "STATE", "FREE/SLOTS", "LOAD", "VERSION", "UPTIME"], rows) + "\n",
  );
  for (const m of members) {
    const why = m.labels[HEALTH_LABEL];
    if (why && m.state !== "dead" && m.state !== "left") {
      process.stdout.write(`${shortId(m.id)} (${m.host}) takes no leases: ${why}\n`);
    }
  }
}

/**
 * `shoal info`: the session's agents as the mesh sees them.
 *
 * @module
 */
import type { Command } from "commander";
import type { Member } from "../../mesh/mod.ts";
import { duration, printJson, shortId, table } from "../format.ts";
import { connectLightPeer, fetchView } from "../light_peer.ts";
import { openSession } from "../session.ts";

/** An agent as `info --json` prints it. */
export interface AgentRow {
  id: string;
  host: string;
  state: string;
  slots: { total: number; free: number };
  load: number;
  version: string;
  uptimeMs: number;
  addrs: string[];
  group: string;
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
    uptimeMs: m.state === "alive" || m.state === "suspect" ? now - m.startedAt : 0,
    addrs: m.addrs,
    group: m.group,
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
      ? duration(now - m.startedAt)
      : `-${duration(now - m.lastSeen)}`,
  ]);
  const wide = (process.stdout.columns ?? 120) >= 120;
  if (!wide) { for (const r of rows) r[0] = shortId(String(r[0])); }
  process.stdout.write(
    table(["ID", "HOST", "STATE", "FREE/SLOTS", "LOAD", "VERSION", "UPTIME"], rows) + "\n",
  );
}

/** Registers `shoal info`. */
export function registerInfo(program: Command): void {
  program.command("info")
    .description("Show the session's agents: peer IDs, hosts, states, slots, uptime")
    .option("--json", "print JSON: {session, agents: [{id, host, state, slots: {total, free}, ...}]}")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal info
  $ shoal info --session lab --json | jq '.agents[].slots.free'`,
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const session = await openSession(name);
      await using peer = await connectLightPeer(session);
      const view = await fetchView(peer);
      const members = view.members;
      if (opts.json) {
        printJson({ session: name, id: session.record.id, agents: agentRows(members) });
        return;
      }
      const alive = members.filter((m) => m.state === "alive");
      const total = alive.reduce((n, m) => n + m.slots.total, 0);
      const free = alive.reduce((n, m) => n + m.slots.free, 0);
      process.stdout.write(
        `Session "${name}": ${alive.length} agent(s) alive, ${free}/${total} slots free\n\n`,
      );
      printAgents(members);
    });
}

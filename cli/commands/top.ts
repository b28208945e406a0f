/**
 * `shoal top`: the busiest tasks across the mesh by CPU and memory, from two readings of every agent.
 *
 * @module
 */
import type { Command } from "commander";
import { fetchTaskUsage, type TaskUsageResponse } from "../../agent/mod.ts";
import { fetchMembers } from "../../commander/mod.ts";
import { connectCommander } from "../commander.ts";
import { ExitCode } from "../errors.ts";
import { printJson, shortId, table } from "../format.ts";
import { intOption, secondsFlag } from "../options.ts";
import { openSession } from "../session.ts";
import type { MeshNode } from "../../mesh/mod.ts";

interface TopOptions {
  id?: string;
  limit: number;
  interval: number;
  once?: boolean;
  json?: boolean;
}

/** A task's row in `shoal top`. */
interface TopRow {
  topologyId: string;
  path: string;
  agent: string;
  host: string;
  pid: number;
  processes: number;
  /** Percent of one core over the interval. */
  cpuPercent: number;
  rssBytes: number;
}

/** Registers `shoal top`. */
export function registerTop(program: Command): void {
  program.command("top")
    .option("--id <id>", "only tasks of this topology")
    .option("-n, --limit <n>", "show this many tasks (0 = all)", intOption(0), 20)
    .addOption(
      secondsFlag("--interval <seconds>", "time between the two readings, and between redraws", 2_000),
    )
    .option("--once", "print one table and exit (the default when stdout is not a terminal)")
    .option(
      "--json",
      'print {"intervalMs", "tasks": [{topologyId, path, agent, host, pid, processes, cpuPercent, rssBytes}]}',
    )
    .addHelpText(
      "after",
      `
CPU is the percent of one core that a task's processes used between two readings of each agent; memory
is their resident set. Agents read /proc only when asked.

Examples:
  $ shoal top
  $ shoal top --id run42 -n 5 --once
  $ shoal top --json | jq '.tasks[0]'`,
    )
    .action(async (opts: TopOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      if (opts.interval <= 0) throw new RangeError("--interval must be more than 0 seconds");
      await using c = await connectCommander(await openSession(name));
      const stop = new AbortController();
      process.once("SIGINT", () => {
        process.exitCode = ExitCode.interrupted;
        stop.abort();
      });
      process.once("SIGTERM", () => stop.abort());
      const live = !opts.once && !opts.json && process.stdout.isTTY;
      const agents = (await fetchMembers(c.init)).filter((m) => m.state === "alive").map((m) => m.id);
      let before = await readAll(c.peer.node, agents, opts.id);
      do {
        await new Promise((r) => {
          const t = setTimeout(r, opts.interval);
          stop.signal.addEventListener("abort", () => (clearTimeout(t), r(undefined)), { once: true });
        });
        if (stop.signal.aborted) break;
        const after = await readAll(c.peer.node, agents, opts.id);
        const rows = busiest(before, after);
        before = after;
        const shown = opts.limit > 0 ? rows.slice(0, opts.limit) : rows;
        if (opts.json) {
          printJson({ intervalMs: opts.interval, tasks: shown });
          break;
        }
        const text = render(shown, rows.length);
        process.stdout.write(live ? `\x1b[H\x1b[2J${text}` : text);
      } while (live && !stop.signal.aborted);
    });
}

async function readAll(node: MeshNode, agents: string[], topologyId?: string): Promise<TaskUsageResponse[]> {
  const all = await Promise.allSettled(
    agents.map((a) => fetchTaskUsage(node, a, topologyId ? { topologyId } : {})),
  );
  return all.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
}

/** Rows by CPU over the time between two readings (then by memory). */
function busiest(before: TaskUsageResponse[], after: TaskUsageResponse[]): TopRow[] {
  const earlier = new Map<string, { cpu: number; at: number }>();
  for (const a of before) {
    for (const t of a.tasks) {
      earlier.set(`${a.agent}\0${t.topologyId}\0${t.path}\0${t.pid}`, { cpu: t.cpuSeconds, at: a.at });
    }
  }
  const rows: TopRow[] = [];
  for (const a of after) {
    for (const t of a.tasks) {
      const e = earlier.get(`${a.agent}\0${t.topologyId}\0${t.path}\0${t.pid}`);
      const seconds = e ? (a.at - e.at) / 1000 : 0;
      const cpu = e && seconds > 0 ? Math.max(0, (t.cpuSeconds - e.cpu) / seconds) * 100 : 0;
      rows.push({
        topologyId: t.topologyId,
        path: t.path,
        agent: a.agent,
        host: a.host,
        pid: t.pid,
        processes: t.processes,
        cpuPercent: Math.round(cpu * 10) / 10,
        rssBytes: t.rssBytes,
      });
    }
  }
  return rows.sort((x, y) => y.cpuPercent - x.cpuPercent || y.rssBytes - x.rssBytes);
}

function render(rows: TopRow[], total: number): string {
  const head = `${total} running task(s)${rows.length < total ? `, the busiest ${rows.length}` : ""}\n\n`;
  return head + table(
    ["CPU%", "RSS", "PROCS", "PID", "HOST", "AGENT", "TOPOLOGY", "PATH"],
    rows.map((r) => [
      r.cpuPercent.toFixed(1),
      mib(r.rssBytes),
      r.processes,
      r.pid,
      r.host,
      shortId(r.agent),
      r.topologyId,
      r.path,
    ]),
  ) + "\n";
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 * 1024
    ? `${(bytes / 1024 / 1024 / 1024).toFixed(1)}G`
    : `${(bytes / 1024 / 1024).toFixed(1)}M`;
}

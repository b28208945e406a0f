/**
 * `shoal ps`: one line per task, from whichever agents run them.
 *
 * @module
 */
import type { Command } from "commander";
import { fetchTasks } from "../../commander/mod.ts";
import { connectCommander } from "../commander.ts";
import { duration, printJson, shortId, table } from "../format.ts";
import { warnPartial } from "../partial.ts";
import { openSession } from "../session.ts";
import { pathRegex } from "../path_regex.ts";

/** Registers `shoal ps`. */
export function registerPs(program: Command): void {
  program.command("ps")
    .argument("[path-regex]", "only tasks whose runtime path matches")
    .option("--id <id>", "only tasks of this topology")
    .option(
      "--json",
      "print {tasks: [{topologyId, path, agent, host, pid, state, restarts, startedAt, ...}]}",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ shoal ps
  $ shoal ps 'SleepGroup/.*_1$' --json`,
    )
    .action(async (regex: string | undefined, opts: { id?: string; json?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const re = pathRegex(regex);
      await using c = await connectCommander(await openSession(name));
      const view = await fetchTasks(c.init, opts.id ? { topologyId: opts.id } : {});
      const tasks = view.agents.flatMap((a) => a.tasks.map((t) => ({ ...t, agent: a.agent, host: a.host })))
        .filter((t) => re.test(t.path))
        .sort((a, b) => a.topologyId.localeCompare(b.topologyId) || a.path.localeCompare(b.path));
      if (opts.json) {
        printJson({ tasks, ...(view.unreachable.length ? { unreachable: view.unreachable } : {}) });
        warnPartial(view.unreachable);
        return;
      }
      const now = Date.now();
      const rows = tasks.map((t) => [
        t.path,
        t.topologyId,
        shortId(t.agent),
        t.pid ?? "-",
        t.state +
        (t.state === "exited" && t.exitCode !== undefined
          ? ` (${t.signal ?? t.exitCode})`
          : t.state === "failed" && t.reason
          ? `: ${t.reason}`
          : ""),
        t.restarts,
        t.state === "running" && t.startedAt ? duration(now - t.startedAt) : "-",
      ]);
      process.stdout.write(
        table(["PATH", "TOPOLOGY", "AGENT", "PID", "STATE", "RESTARTS", "UPTIME"], rows) + "\n",
      );
      warnPartial(view.unreachable);
    });
}

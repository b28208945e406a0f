/**
 * `shoal up`: create (or reuse) a session and start its agents.
 *
 * @module
 */
import type { Command } from "commander";
import { getRms, RMS_NAMES } from "../../rms/mod.ts";
import { CliError, ExitCode } from "../errors.ts";
import { printJson } from "../format.ts";
import { hostPortOption, intOption, secondsFlag } from "../options.ts";
import { openOrCreateSession } from "../session.ts";
import { agentRows, printAgents } from "../agent_table.ts";
import { commandHandlerFor, submitAgents } from "../agents_submit.ts";
import { agentHealthOptions, healthOf } from "../health_options.ts";

interface UpOptions {
  minFreeDisk?: number;
  maxLoad?: number;
  agents?: number;
  slots: number;
  rms: string;
  rmsConfig?: string;
  group?: string;
  timeout: number;
  json?: boolean;
  commandHandler?: string;
  metrics?: string;
}

/** Registers `shoal up`. */
export function registerUp(program: Command): void {
  program.command("up")
    .option("-n, --agents <n>", "number of agents (default 1; ssh: one per configured host)", intOption(1))
    .option("-s, --slots <n>", "task slots per agent", intOption(1), 1)
    .option("--rms <name>", `plug-in that starts the agents (${RMS_NAMES.join(", ")})`, "localhost")
    .option(
      "-c, --rms-config <file>",
      "plug-in config: ssh host list (DDS format or JSON), Slurm options (JSON)",
    )
    .option("-g, --group <name>", "group name the agents announce")
    .addOption(
      secondsFlag("--timeout <seconds>", "give up after this long", 30_000),
    )
    .option(
      "--command-handler <file>",
      "executable with which the agents answer custom agent commands (see shoal agent --help)",
    )
    .option(
      "--metrics <host:port>",
      "each agent serves Prometheus metrics there (port 0: a free port each; see shoal info --prometheus-sd)",
      hostPortOption("metrics address"),
    )
    .addOption(agentHealthOptions()[0]!)
    .addOption(agentHealthOptions()[1]!)
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal up --agents 3 --slots 2
  $ shoal up --session lab --agents 2 --json
  $ shoal up --rms ssh -c hosts.cfg
  $ shoal up --agents 3 --command-handler ./site-cmd.sh
  $ shoal up --agents 4 --metrics 127.0.0.1:0 && shoal info --prometheus-sd > shoal-targets.json
  $ shoal up --agents 4 --min-free-disk 2GB --max-load 8   agents stop taking leases past these

To add agents to a session that is up, use \`shoal submit\`.`,
    )
    .action(async (opts: UpOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      // A bad handler is a usage error before anything starts.
      const handler = opts.commandHandler ? commandHandlerFor(opts.rms, opts.commandHandler) : undefined;
      const started = performance.now();
      const session = await openOrCreateSession(name);
      const live: string[] = [];
      for (const [rmsName, jobs] of Map.groupBy(session.record.jobs, (j) => j.rms)) {
        for (const s of await getRms(rmsName).status(jobs)) if (s.state !== "exited") live.push(s.id);
      }
      if (live.length > 0) {
        throw new CliError(
          `Session "${name}" is already up with ${live.length} agent(s); add agents with \`shoal submit\`, ` +
            `stop it with \`shoal down\`, or use another session with \`--session NAME\``,
        );
      }
      session.record.jobs = [];
      await session.save();
      const outcome = await submitAgents(session, {
        rms: opts.rms,
        slots: opts.slots,
        timeout: opts.timeout,
        quiet: opts.json ?? false,
        ...(opts.agents !== undefined ? { agents: opts.agents } : {}),
        ...(opts.rmsConfig ? { configFile: opts.rmsConfig } : {}),
        ...(opts.group ? { group: opts.group } : {}),
        ...(handler ? { commandHandler: handler } : {}),
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
        ...healthOf(opts),
      });
      const members = outcome.members;
      const elapsedMs = Math.round(performance.now() - started);
      const failures = outcome.failures.map((f) => ({
        host: f.host,
        job: f.job,
        step: f.step,
        reason: f.reason,
      }));
      if (failures.length) process.exitCode = ExitCode.failure;
      if (opts.json) {
        printJson({ session: name, id: session.record.id, elapsedMs, agents: agentRows(members), failures });
        return;
      }
      const slots = members.reduce((n, m) => n + m.slots.total, 0);
      process.stdout.write(
        `Session "${name}" is up: ${members.length} agents, ${slots} slots (${
          (elapsedMs / 1000).toFixed(1)
        } s)\n\n`,
      );
      printAgents(members);
      for (const f of failures) {
        process.stdout.write(`  not started: ${f.host}${f.step ? ` [${f.step}]` : ""}: ${f.reason}\n`);
      }
    });
}

/**
 * `shoal submit` (DDS `dds-submit`): start more agents for a session through an RMS plug-in — on this
 * machine, over ssh or through Slurm — and wait until they joined the session's mesh (or found it).
 *
 * @module
 */
import type { Command } from "commander";
import { type AgentFailure, RMS_NAMES, SubmitError } from "../../rms/mod.ts";
import { commandHandlerFor, submitAgents, type SubmitOutcome } from "../agents_submit.ts";
import { CliError, ExitCode } from "../errors.ts";
import { printJson } from "../format.ts";
import { agentHealthOptions, healthOf } from "../health_options.ts";
import { hostPortOption, intOption, keyValue, secondsOption } from "../options.ts";
import { openOrCreateSession } from "../session.ts";

interface SubmitOptions {
  rms: string;
  agents?: number;
  slots: number;
  group?: string;
  label?: Record<string, string>;
  rmsConfig?: string;
  minInstances?: number;
  timeout?: number;
  json?: boolean;
  commandHandler?: string;
  metrics?: string;
  resource?: string;
  pilots?: string;
  minFreeDisk?: number;
  maxLoad?: number;
}

function failureLine(f: AgentFailure): string {
  return `  ${f.host}${f.job ? ` (job ${f.job})` : ""}${f.step ? ` [${f.step}]` : ""}: ${f.reason}`;
}

/** Registers `shoal submit`. */
export function registerSubmit(program: Command): void {
  program.command("submit")
    .option("--rms <name>", `plug-in that starts the agents (${RMS_NAMES.join(", ")})`, "localhost")
    .option(
      "-n, --agents <n>",
      "number of agents (ssh default: one per configured host; else 1)",
      intOption(1),
    )
    .option("-s, --slots <n>", "task slots per agent (an ssh host line's own count wins)", intOption(1), 1)
    .option("-g, --group <name>", "group name the agents announce")
    .option("--label <key=value>", "label the agents announce (repeatable)", keyValue)
    .option(
      "-c, --rms-config <file>",
      "plug-in config: ssh host list (DDS format or JSON), Slurm or SGE options (JSON)",
    )
    .option(
      "--min-instances <n>",
      "succeed once this many agents started (Slurm: --nodes=MIN-MAX)",
      intOption(1),
    )
    .option("--timeout <seconds>", "give up after this long (default: 120)", secondsOption)
    .option(
      "--command-handler <file>",
      "the agents' handler of custom agent commands (a path where they run; see shoal agent --help)",
    )
    .option(
      "--metrics <host:port>",
      "each agent serves Prometheus metrics there (port 0: a free port each; see shoal info --prometheus-sd)",
      hostPortOption("metrics address"),
    )
    .option(
      "--resource <name>",
      "site resource whose pilot the agents run (default: Slurm partition, SGE queue; see shoal pilot)",
    )
    .option("--pilots <file>", 'pilots file: step lists per resource type (default: the config\'s "pilots")')
    .addOption(agentHealthOptions()[0]!)
    .addOption(agentHealthOptions()[1]!)
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal submit --rms localhost -n 2 --slots 4         two more agents on this machine
  $ shoal submit --rms ssh -c hosts.cfg                  one agent per line of hosts.cfg
  $ shoal submit --rms slurm -n 10 --slots 8 --min-instances 6 -c slurm.json
  $ shoal submit --rms slurm -n 4 -c slurm.json --resource gpu-partition --pilots pilots.yaml
  $ shoal submit --rms sge -n 8 --slots 4 -c sge.json     an array job of 8 pilots (qsub -t 1-8)
  $ shoal submit --rms slurm -n 4 -c slurm.json --min-free-disk 5GB --max-load 32
  $ shoal submit --rms ssh -c hosts.cfg --json
  $ shoal submit -n 2 --command-handler ./site-cmd.sh   answers \`shoal cmd send --condition agent …\`

hosts.cfg (DDS format: id, user@host, ssh options, remote work dir, slots):
  @bash_begin@
  export PATH=$HOME/bin:$PATH
  @bash_end@
  wn1, alice@node1.example.org, -p 22, /tmp/shoal, 8
  wn2, alice@node2.example.org, , /tmp/shoal, 8

The binary is copied to each host once (checked by SHA-256). Without running agents in the session, the
first new agent founds the mesh. Exit codes: 0 all started and joined, 1 some or all failed (each failure
is listed with its host and reason), 2 bad usage or config, 5 timed out.`,
    )
    .action(async (opts: SubmitOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      if (opts.minInstances && opts.agents && opts.minInstances > opts.agents) {
        throw new CliError(
          `--min-instances ${opts.minInstances} is more than --agents ${opts.agents}`,
          ExitCode.usage,
        );
      }
      const handler = opts.commandHandler ? commandHandlerFor(opts.rms, opts.commandHandler) : undefined;
      const began = performance.now();
      const session = await openOrCreateSession(name);
      let outcome: SubmitOutcome | undefined;
      let error: SubmitError | undefined;
      try {
        outcome = await submitAgents(session, {
          rms: opts.rms,
          slots: opts.slots,
          labels: opts.label ?? {},
          timeout: opts.timeout ?? 120_000,
          quiet: opts.json ?? false,
          ...(opts.agents ? { agents: opts.agents } : {}),
          ...(opts.group ? { group: opts.group } : {}),
          ...(opts.rmsConfig ? { configFile: opts.rmsConfig } : {}),
          ...(opts.minInstances ? { minCount: opts.minInstances } : {}),
          ...(handler ? { commandHandler: handler } : {}),
          ...(opts.metrics ? { metrics: opts.metrics } : {}),
          ...(opts.resource ? { resource: opts.resource } : {}),
          ...(opts.pilots ? { pilots: opts.pilots } : {}),
          ...healthOf(opts),
        });
      } catch (err) {
        if (!(err instanceof SubmitError)) throw err;
        error = err;
      }
      const elapsedMs = Math.round(performance.now() - began);
      const jobs = outcome?.jobs ?? [];
      const failures = outcome?.failures ?? error?.failures ?? [];
      const joined = new Set(jobs.map((j) => j.peerId));
      const slots = (outcome?.members ?? []).filter((m) => joined.has(m.id)).reduce(
        (n, m) => n + m.slots.total,
        0,
      );
      if (opts.json) {
        printJson({
          session: name,
          rms: opts.rms,
          requested: outcome?.requested ?? jobs.length + failures.length,
          started: jobs.length,
          slots,
          elapsedMs,
          agents: jobs.map((j) => ({ job: j.id, host: j.host, id: j.peerId, addrs: j.addrs ?? [] })),
          failures,
          ...(error ? { error: error.message } : {}),
        });
      } else {
        if (jobs.length > 0) {
          process.stdout.write(
            `Started ${jobs.length} agent(s) with ${slots} slots in session "${name}" via ${opts.rms} (${
              (elapsedMs / 1000).toFixed(1)
            } s)\n`,
          );
          for (const j of jobs) process.stdout.write(`  ${j.id}  ${j.host}  ${j.peerId ?? ""}\n`);
        }
        if (failures.length > 0) {
          process.stdout.write(
            `${failures.length} agent(s) did not start:\n${failures.map(failureLine).join("\n")}\n`,
          );
        }
        if (error) process.stderr.write(`shoal: ${error.message}\n`);
      }
      if (error || failures.length > 0) process.exitCode = ExitCode.failure;
    });
}

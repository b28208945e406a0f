/**
 * `shoal submit` (DDS `dds-submit`): start more agents for a session through an RMS plug-in — on this
 * machine, over ssh or through Slurm — and wait until they joined the session's mesh (or found it).
 *
 * @module
 */
import { type Command, Option } from "commander";
import {
  createMeshNode,
  type Member,
  type MeshNode,
  request,
  type View,
  VIEW_PROTOCOL,
  ViewSchema,
} from "../../mesh/mod.ts";
import {
  type AgentFailure,
  type AgentJob,
  getRms,
  RMS_NAMES,
  RmsConfigError,
  type RmsPlugin,
  RmsToolMissingError,
  SubmitError,
} from "../../rms/mod.ts";
import { CliError, DeadlineError, ExitCode } from "../errors.ts";
import { printJson } from "../format.ts";
import {
  bytesOption,
  executableFile,
  hostPortOption,
  intOption,
  keyValue,
  positiveNumberOption,
  secondsOption,
} from "../options.ts";
import { DEFAULT_MIN_FREE_DISK, formatBytes, healthLabels } from "../../pool/mod.ts";
import { startProgress } from "../progress.ts";
import { selfCommand } from "../self_command.ts";
import { openOrCreateSession, type Session } from "../session.ts";

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

/** What a submission did. */
export interface SubmitOutcome {
  requested: number;
  jobs: AgentJob[];
  failures: AgentFailure[];
  /** Members of the mesh that the new agents joined. */
  members: Member[];
}

/** Options of {@linkcode submitAgents}. */
export interface SubmitAgentsOptions {
  rms: string;
  /** Agents to start; default: the plug-in's (ssh: one per configured host; others: 1). */
  agents?: number;
  slots: number;
  group?: string;
  labels?: Record<string, string>;
  /** The plug-in's config file (`-c`). */
  configFile?: string;
  minCount?: number;
  timeout: number;
  quiet?: boolean;
  /** The agents' `--command-handler` (a path where the agents run). */
  commandHandler?: string;
  /** The agents' `--metrics HOST:PORT`. */
  metrics?: string;
  /** The site resource that picks the agents' pilot (`shoal pilot show --resource`). */
  resource?: string;
  /** A pilots file (step lists per resource type). */
  pilots?: string;
  /** The agents' `--min-free-disk` and `--max-load`, handed over as labels. */
  health?: AgentHealthOptions;
}

/** `--min-free-disk` and `--max-load` of a command that starts agents. */
export interface AgentHealthOptions {
  minFreeDisk?: number;
  maxLoad?: number;
}

/** `--min-free-disk` and `--max-load` for the agents a command starts (through any plug-in): add both. */
export function agentHealthOptions(): Option[] {
  return [
    new Option(
      "--min-free-disk <size>",
      `each agent takes no leases while its data disk has less free (e.g. 2GB; 0: no check) (default: ${
        formatBytes(DEFAULT_MIN_FREE_DISK)
      })`,
    ).argParser(bytesOption),
    new Option(
      "--max-load <n>",
      "each agent takes no leases while its 1-minute load average stays above <n> (default: no limit)",
    ).argParser(positiveNumberOption),
  ];
}

/** The health part of a command's options, for {@linkcode submitAgents}. */
export function healthOf(opts: AgentHealthOptions): { health?: AgentHealthOptions } {
  const h = {
    ...(opts.minFreeDisk !== undefined ? { minFreeDisk: opts.minFreeDisk } : {}),
    ...(opts.maxLoad !== undefined ? { maxLoad: opts.maxLoad } : {}),
  };
  return Object.keys(h).length ? { health: h } : {};
}

/** The agents' labels: the asked-for ones and the health settings. */
function labelsOf(opts: SubmitAgentsOptions): { labels?: Record<string, string> } {
  const labels = {
    ...opts.labels,
    ...healthLabels({
      ...(opts.health?.minFreeDisk !== undefined ? { minFreeDiskBytes: opts.health.minFreeDisk } : {}),
      ...(opts.health?.maxLoad !== undefined ? { maxLoad: opts.health.maxLoad } : {}),
    }),
  };
  return Object.keys(labels).length ? { labels } : {};
}

/** Addresses of the session's agents that are running, local and remote. */
export async function meshAddrs(session: Session, signal: AbortSignal): Promise<string[]> {
  const addrs = (await session.ref()).bootstrap;
  const remote = session.record.jobs.filter((j) => !j.dataDir && j.addrs?.length);
  for (const [name, jobs] of Map.groupBy(remote, (j) => j.rms)) {
    let states: Map<string, string>;
    try {
      states = new Map((await getRms(name).status(jobs, { signal })).map((s) => [s.id, s.state]));
    } catch {
      states = new Map();
    }
    for (const j of jobs) if (states.get(j.id) !== "exited") addrs.push(...(j.addrs ?? []));
  }
  return [...new Set(addrs)];
}

/**
 * The view of the first of `addrs` that answers, asking one at a time (a view is N members), each given
 * 3 s: an agent too busy to answer in time (many starting on few cores) passes the turn to the next.
 */
async function fetchViewFrom(node: MeshNode, addrs: string[], signal: AbortSignal): Promise<View> {
  let last: unknown = new Error("No address to ask");
  for (const a of addrs) {
    try {
      return await request(node, a, VIEW_PROTOCOL, {}, { schema: ViewSchema, signal, timeoutMs: 3_000 });
    } catch (err) {
      if (signal.aborted) throw err;
      last = err;
    }
  }
  throw last;
}

/**
 * True when every started agent whose address is known sees all `expected` agents alive: the next command
 * may ask any of them (`topology activate` places with the view of the first agent that answers). Agents
 * already seen to see all are in `satisfied` and not asked again (at 100 agents each view is 100 members).
 */
async function everyAgentSeesAll(
  node: MeshNode,
  jobs: readonly { addrs?: string[] }[],
  expected: ReadonlySet<string>,
  satisfied: Set<string>,
  signal: AbortSignal,
): Promise<boolean> {
  const addrs = jobs.flatMap((j) => j.addrs?.slice(0, 1) ?? []).filter((a) => !satisfied.has(a));
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(3_000)]);
  await Promise.all(addrs.map(async (a) => {
    const v = await fetchViewFrom(node, [a], deadline).catch(() => undefined);
    if (v && aliveOf(v.members, expected) >= expected.size) satisfied.add(a);
  }));
  return addrs.every((a) => satisfied.has(a));
}

/** How many of `expected` a view has alive. */
function aliveOf(members: readonly Member[], expected: ReadonlySet<string>): number {
  return members.filter((m) => m.state === "alive" && expected.has(m.id)).length;
}

async function loadConfig(plugin: RmsPlugin, file: string | undefined) {
  if (!file) return undefined;
  if (!plugin.loadConfig) {
    throw new CliError(`The ${plugin.name} plug-in takes no config file`, ExitCode.usage);
  }
  try {
    return await plugin.loadConfig(file);
  } catch (err) {
    if (err instanceof RmsConfigError) throw new CliError(err.message, ExitCode.usage, { cause: err });
    throw err;
  }
}

/**
 * Starts agents for `session` through a plug-in, records their jobs in the session and waits until they
 * are alive in the mesh. Agents that failed to start are in `failures`; throws `SubmitError` when too few
 * started, `DeadlineError` when they did not join in time.
 */
export async function submitAgents(session: Session, opts: SubmitAgentsOptions): Promise<SubmitOutcome> {
  const plugin = getRms(opts.rms);
  const config = await loadConfig(plugin, opts.configFile);
  let count: number;
  try {
    count = opts.agents ?? plugin.defaultCount?.(config) ?? 1;
  } catch (err) {
    if (err instanceof RmsConfigError) throw new CliError(err.message, ExitCode.usage, { cause: err });
    throw err;
  }
  const signal = AbortSignal.timeout(opts.timeout);
  const bar = startProgress(`Starting agents (${plugin.name})`, count, { quiet: opts.quiet ?? false });
  const failures: AgentFailure[] = [];
  let started = 0;
  try {
    const ref = await session.ref();
    ref.bootstrap = await meshAddrs(session, signal);
    let jobs: AgentJob[];
    try {
      jobs = await plugin.submit({
        session: ref,
        count,
        slots: opts.slots,
        self: selfCommand(),
        signal,
        ...(config ? { config } : {}),
        ...(opts.group ? { group: opts.group } : {}),
        ...labelsOf(opts),
        ...(opts.minCount ? { minCount: opts.minCount } : {}),
        ...(opts.commandHandler ? { commandHandler: commandHandlerFor(opts.rms, opts.commandHandler) } : {}),
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
        ...(opts.resource ? { resource: opts.resource } : {}),
        ...(opts.pilots ? { pilots: opts.pilots } : {}),
        onEvent: (e) => {
          if (e.type === "agent:started") bar.update(++started);
          if (e.type === "agent:failed") failures.push(e.failure);
        },
      });
    } catch (err) {
      if (err instanceof SubmitError) {
        throw new SubmitError(err.message, failures.length ? failures : err.failures);
      }
      if (err instanceof RmsToolMissingError) {
        throw new CliError(err.message, ExitCode.failure, { cause: err });
      }
      if (err instanceof RmsConfigError) throw new CliError(err.message, ExitCode.usage, { cause: err });
      // Cut short by --timeout: a timeout (exit 5), whatever the plug-in threw.
      if (signal.aborted && (signal.reason as Error | undefined)?.name === "TimeoutError") {
        throw new DeadlineError((err as Error).message, { cause: err });
      }
      throw err;
    }
    session.record.jobs.push(...jobs);
    await session.save();

    const expected = new Set(jobs.map((j) => j.peerId).filter((p): p is string => !!p));
    const addrs = [...new Set([...ref.bootstrap, ...jobs.flatMap((j) => j.addrs ?? [])])];
    const node = await createMeshNode({ swarmKey: await session.swarmKey() });
    try {
      let members: Member[] = [];
      let alive = 0;
      const satisfied = new Set<string>();
      while (!signal.aborted) {
        try {
          members = (await fetchViewFrom(node, addrs, signal))
            .members;
          alive = aliveOf(members, expected);
          bar.update(alive);
          if (alive >= expected.size && await everyAgentSeesAll(node, jobs, expected, satisfied, signal)) {
            return { requested: count, jobs, failures, members };
          }
        } catch { /* not reachable yet */ }
        // Each round costs the agents a view each; a quarter second is quick enough for a person.
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new DeadlineError(
        `Only ${alive} of ${expected.size} started agents joined the mesh within ${opts.timeout / 1000} s; ` +
          `see their logs (\`agent.log\` in each agent's data dir). They keep running, recorded in the ` +
          `session: \`shoal down\` stops them`,
      );
    } finally {
      await node.stop();
    }
  } finally {
    bar.stop();
  }
}

/**
 * The agents' command handler as the plug-in should pass it on: on this machine it must be an executable
 * (made absolute); for remote plug-ins it is a path on the nodes, taken as given.
 */
export function commandHandlerFor(rms: string, file: string): string {
  if (rms !== "localhost") return file;
  try {
    return executableFile(file);
  } catch (err) {
    throw new CliError(`--command-handler: ${(err as Error).message}`, ExitCode.usage, { cause: err });
  }
}

function failureLine(f: AgentFailure): string {
  return `  ${f.host}${f.job ? ` (job ${f.job})` : ""}${f.step ? ` [${f.step}]` : ""}: ${f.reason}`;
}

/** Registers `shoal submit`. */
export function registerSubmit(program: Command): void {
  program.command("submit")
    .description(
      "Start more agents for the session (DDS dds-submit): on this machine, over ssh, via Slurm or Grid Engine",
    )
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

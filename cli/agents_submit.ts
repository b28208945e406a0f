/**
 * Starting agents for a session through an RMS plug-in and waiting until they joined its mesh: `shoal
 * submit`, `shoal up` and `shoal pool grow`.
 *
 * @module
 */
import {
  createMeshNode,
  type Member,
  type MeshNode,
  request,
  type View,
  VIEW_PROTOCOL,
  ViewSchema,
} from "../mesh/mod.ts";
import {
  type AgentFailure,
  type AgentJob,
  getRms,
  RmsConfigError,
  type RmsPlugin,
  RmsToolMissingError,
  SubmitError,
} from "../rms/mod.ts";
import { healthLabels } from "../pool/mod.ts";
import { CliError, DeadlineError, ExitCode } from "./errors.ts";
import type { AgentHealthOptions } from "./health_options.ts";
import { executableFile } from "./options.ts";
import { startProgress } from "./progress.ts";
import { selfCommand } from "./self_command.ts";
import type { Session } from "./session.ts";

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
      const partial = alive < expected.size
        ? `Only ${alive} of ${expected.size} started agents joined the mesh`
        : `All ${alive} started agents joined the mesh, but ${
          jobs.filter((j) => j.addrs?.length).length - satisfied.size
        } of them did not yet see all ${expected.size} alive`;
      throw new DeadlineError(
        `${partial} within ${opts.timeout / 1000} s; ` +
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

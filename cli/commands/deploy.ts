/**
 * `shoal topology activate|update|stop`: the CLI as commander.
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { readFile } from "node:fs/promises";
import {
  activateTopology,
  CommanderError,
  type CommanderInit,
  type DeployResult,
  errorText,
  fetchTopologies,
  RECONCILE_RULES,
  type ReconcileRule,
  stopTopology,
  updateTopology,
} from "../../agent/mod.ts";
import { parseVarOverrides } from "../../topology/mod.ts";
import {
  EnvConflictError,
  EnvNotFoundError,
  type EnvRecord,
  fetchEnvs,
  stopEnvironmentTopology,
} from "../../env/mod.ts";
import { PoolError, type QueueRequest, queueTopology, waitStarted } from "../../pool/mod.ts";
import { connectCommander, whoAmI } from "../commander.ts";
import { CliError, ExitCode } from "../errors.ts";
import { printJson, shortId } from "../format.ts";
import { secondsOption } from "../options.ts";
import { startProgress } from "../progress.ts";
import { warnPartial } from "../partial.ts";
import { openSession } from "../session.ts";
import { addVarOption, loadTopologyForCli } from "./topology.ts";

interface DeployOptions {
  id?: string;
  reconcile?: ReconcileRule;
  var: string[];
  json?: boolean;
  queue?: boolean;
  priority?: number;
  share?: string;
  wait?: boolean;
}

/** `--priority P`: an integer, higher first. */
export function priorityOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || Math.abs(n) > 1_000_000) {
    throw new InvalidArgumentError(`"${value}" is not an integer between -1000000 and 1000000.`);
  }
  return n;
}

async function readSource(file: string, vars: string[]) {
  await loadTopologyForCli(file, vars); // every error of the file, before the mesh is touched
  return { file, source: await readFile(file, "utf8"), vars: parseVarOverrides(vars) };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function report(
  verb: string,
  r: DeployResult,
  json: boolean | undefined,
  extra: Record<string, unknown> = {},
) {
  const failed = r.tasks.filter((t) => t.state === "failed");
  if (json) {
    printJson({
      topologyId: r.topologyId,
      name: r.name,
      started: r.started,
      failed: r.failed,
      stopped: r.stopped,
      agents: r.agents,
      elapsedMs: r.elapsedMs,
      ...extra,
      tasks: r.tasks.map((t) => ({
        path: t.path,
        agent: t.agent,
        pid: t.pid,
        state: t.state,
        reason: t.reason,
      })),
    });
  } else {
    process.stdout.write(
      `${verb} "${r.topologyId}": ${r.started} task(s) running on ${r.agents} agent(s)` +
        `${r.stopped ? `, ${r.stopped} stopped` : ""}${failed.length ? `, ${failed.length} failed` : ""} in ${
          seconds(r.elapsedMs)
        }\n`,
    );
    for (const t of failed.slice(0, 20)) {
      process.stdout.write(`  failed: ${t.path} on ${shortId(t.agent)}: ${t.reason ?? "unknown reason"}\n`);
    }
    if (failed.length > 20) process.stdout.write(`  … and ${failed.length - 20} more (see \`shoal ps\`)\n`);
  }
  if (failed.length) process.exitCode = ExitCode.failure;
}

/** A progress bar created on the first report, when the total is known. */
function lazyBar(label: string, json: boolean | undefined) {
  let bar: ReturnType<typeof startProgress> | undefined;
  return {
    update: (done: number, total: number) => {
      bar ??= startProgress(label, total, { quiet: json ?? false });
      bar.update(done, total);
    },
    stop: () => bar?.stop(),
  };
}

/**
 * The live environment that runs topology `id` (or the only active topology), if any. Unknown is not
 * "none": an operation that might bypass an environment is refused before anything is touched.
 */
async function environmentOf(
  init: CommanderInit,
  id: string | undefined,
  what: string,
): Promise<EnvRecord | undefined> {
  const active = id === undefined ? (await fetchTopologies(init)).filter((r) => r.state === "active") : [];
  const target = id ?? (active.length === 1 ? active[0]!.id : undefined);
  if (target === undefined) return undefined; // none or several: the operation says what is wrong
  const envs = await fetchEnvs(init).catch((err) => {
    throw new CliError(
      `${what} refused, nothing was touched: cannot tell whether an environment controls topology ` +
        `"${target}" (${errorText(err)}); try again`,
      ExitCode.failure,
      { cause: err },
    );
  });
  return envs.find((e) => e.topologyId === target && !e.destroyed && e.state !== "DONE");
}

/**
 * An environment's topology changes through the environment (its tasks have control modes and states that
 * an update would not know of): `topology update` of one is refused before anything is touched.
 */
async function refuseEnvironmentTopology(init: CommanderInit, id: string | undefined): Promise<void> {
  const env = await environmentOf(init, id, "Update");
  if (!env) return;
  throw new CliError(
    `Topology "${env.topologyId}" belongs to environment "${env.id}" (${env.state}); an update would bypass ` +
      `its control modes and task states. Change it through the environment: \`shoal env destroy ${env.id}${
        env.state === "RUNNING" || env.state === "ERROR" ? " --force" : ""
      }\`, then \`shoal env create\` with the new file`,
    ExitCode.usage,
  );
}

/** `topology stop` of an environment's topology: refused, as an update is, unless forced. */
function refuseEnvironmentStop(env: EnvRecord): never {
  const end = env.state === "RUNNING"
    ? `\`shoal env control ${env.id} -e STOP_ACTIVITY\`, then \`-e EXIT\``
    : env.state === "ERROR"
    ? `\`shoal env destroy ${env.id} --force\``
    : `\`shoal env control ${env.id} -e EXIT\``;
  throw new CliError(
    `Topology "${env.topologyId}" belongs to environment "${env.id}" (${env.state}); stopping it would ` +
      `leave the environment without its tasks. End it through the environment: ${end}, or ` +
      `\`shoal env destroy ${env.id}${
        env.state === "RUNNING" || env.state === "ERROR" ? " --force" : ""
      }\`; ` +
      `or stop it anyway with --force (the environment goes to ERROR)`,
    ExitCode.usage,
  );
}

async function asCli<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CommanderError || err instanceof EnvConflictError || err instanceof EnvNotFoundError) {
      throw new CliError(err.message, ExitCode.failure, { cause: err });
    }
    throw err;
  }
}

/** Options of {@linkcode queueAndWait}. */
export interface QueueOptions {
  id?: string;
  json?: boolean;
  priority?: number;
  share?: string;
  /** False with `--no-wait`. */
  wait?: boolean;
}

/**
 * `activate --queue` and `env create --queue`: queue in the pool, then (unless --no-wait) wait until the
 * scheduler started it.
 */
export async function queueAndWait(
  session: Awaited<ReturnType<typeof openSession>>,
  src: { file: string; source: string; vars: Record<string, string> },
  opts: QueueOptions,
  env?: QueueRequest["env"],
): Promise<void> {
  await using c = await connectCommander(session);
  const entry = await asPool(() =>
    queueTopology(c.init, {
      ...src,
      ...(opts.id ? { id: opts.id } : {}),
      ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
      ...(opts.share ? { share: opts.share } : {}),
      ...(env ? { env } : {}),
    })
  );
  if (!opts.json) {
    process.stdout.write(
      `Queued "${entry.id}" (${entry.tasks} task(s), priority ${entry.priority}, share "${entry.share}")\n`,
    );
  }
  if (opts.wait === false) {
    if (opts.json) {
      printJson({ topologyId: entry.id, state: entry.state, priority: entry.priority, tasks: entry.tasks });
    }
    return;
  }
  let said = "";
  const began = Date.now();
  const e = await waitStarted(c.init, entry.id, {
    onWaiting: (position, waiting) => {
      const line = `  position ${position ?? "?"}: ${waiting}`;
      if (line !== said && !opts.json) process.stderr.write(`${line}\n`);
      said = line;
    },
  });
  if (opts.json) {
    printJson({
      topologyId: e.id,
      state: e.state,
      priority: e.priority,
      tasks: e.tasks,
      waitedMs: (e.startedAt ?? Date.now()) - e.queuedAt,
      ...(e.reason ? { reason: e.reason } : {}),
    });
  } else if (e.state === "cancelled") {
    process.stdout.write(`"${e.id}" left the queue: ${e.reason ?? "cancelled"}\n`);
  } else {
    process.stdout.write(
      `Started "${e.id}" from the pool after ${
        seconds((e.startedAt ?? Date.now()) - e.queuedAt)
      } in the queue` +
        ` (${seconds(Date.now() - began)} waited here)\n`,
    );
  }
  if (e.state === "cancelled") process.exitCode = ExitCode.failure;
}

async function asPool<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PoolError) throw new CliError(err.message, ExitCode.failure, { cause: err });
    throw err;
  }
}

/** Registers the mesh subcommands of `shoal topology`. */
export function registerDeploy(topology: Command): void {
  addVarOption(
    topology.command("activate")
      .description("Start every task of a topology on the session's agents; returns when all are running")
      .argument("<file>", "topology file (DDS XML or shoal JSON)")
      .option("--id <id>", "topology ID (default: the topology's name)")
      .addOption(
        new Option(
          "--reconcile <rule>",
          "which instance stays when a partition heals with a task running on both sides",
        ).choices([...RECONCILE_RULES]).default("keep_replacement"),
      )
      .option(
        "--json",
        "print {topologyId, started, failed, agents, elapsedMs, tasks: [...]}; with --queue " +
          "{topologyId, state, priority, tasks (a count), waitedMs, reason?} (no waitedMs with --no-wait)",
      )
      .option("--queue", "wait in the session's pool for free slots instead of failing (see shoal pool)")
      .option("--priority <p>", "with --queue: higher starts first (default: 0)", priorityOption)
      .option(
        "--share <group>",
        "with --queue: fair-share group; equal priorities take turns by group (default: the ID)",
      )
      .option("--no-wait", "with --queue: return once queued, not once started")
      .addHelpText(
        "after",
        `
A topology that does not fit starts nothing and says what is missing — unless queued: then it waits in the
pool and starts whole once slots free up (by priority, then round-robin over share groups; \`shoal pool\`
shows the queue). Exit code 1 when a task failed to start, or a queued topology was cancelled.
--reconcile (Nomad's rules): keep_replacement keeps the instance the majority started; keep_original the one
leased first; longest_running the one whose current run started first; best_score the one on the agent with
the larger free share of its slots. The duplicate is stopped and reported as task:duplicate-stopped.

Examples:
  $ shoal topology activate topology/testdata/ripple.xml      # a sample in shoal's repository
  $ shoal topology activate topo.xml --id run42 --var nInstances=20 --json
  $ shoal topology activate topo.xml --id nightly --queue --priority 10
  $ shoal topology activate topo.xml --id batch7 --queue --share alice --no-wait`,
      ),
  ).action(async (file: string, opts: DeployOptions, cmd: Command) => {
    const { session: name } = cmd.optsWithGlobals<{ session: string }>();
    const src = await readSource(file, opts.var);
    const session = await openSession(name);
    if (!opts.queue && (opts.priority !== undefined || opts.share !== undefined || opts.wait === false)) {
      throw new CliError("--priority, --share and --no-wait go with --queue", ExitCode.usage);
    }
    if (opts.queue && opts.reconcile !== "keep_replacement") {
      throw new CliError(
        "--reconcile does not go with --queue yet (the pool starts it with the default)",
        ExitCode.usage,
      );
    }
    if (opts.queue) return await queueAndWait(session, src, opts);
    const bar = lazyBar("Starting tasks", opts.json);
    await using c = await connectCommander(session, { onProgress: bar.update });
    const r = await asCli(() =>
      activateTopology(c.init, {
        ...src,
        ...(opts.id ? { id: opts.id } : {}),
        ...(opts.reconcile !== "keep_replacement" ? { reconcile: opts.reconcile } : {}),
      })
    )
      .finally(bar.stop);
    report("Activated", r, opts.json);
  });

  addVarOption(
    topology.command("update")
      .description(
        "Update an active topology as DDS does: stop removed tasks, start added ones, keep the rest",
      )
      .argument("<file>", "the new topology file")
      .option("--id <id>", "topology to update (default: the only active one)")
      .option("--json", "print the result as JSON, with the removed and added task paths")
      .addHelpText(
        "after",
        `
Unchanged tasks keep running with the same PID. An update that cannot be placed is refused before anything stops.

Examples:
  $ shoal topology update new.xml
  $ shoal topology update new.xml --id run42 --json`,
      ),
  ).action(async (file: string, opts: DeployOptions, cmd: Command) => {
    const { session: name } = cmd.optsWithGlobals<{ session: string }>();
    const src = await readSource(file, opts.var);
    const bar = lazyBar("Starting added tasks", opts.json);
    await using c = await connectCommander(await openSession(name), { onProgress: bar.update });
    await refuseEnvironmentTopology(c.init, opts.id);
    const r = await asCli(() => updateTopology(c.init, { ...src, ...(opts.id ? { id: opts.id } : {}) }))
      .finally(bar.stop);
    if (!opts.json && r.removed.length === 0 && r.added.length === 0) {
      process.stdout.write(`No changes to "${r.topologyId}"\n`);
      return;
    }
    report("Updated", r, opts.json, { removed: r.removed, added: r.added });
  });

  topology.command("stop")
    .description("Stop every task of an active topology and all their child processes")
    .option("--id <id>", "topology to stop (default: the only active one)")
    .option("--grace <seconds>", "time between SIGTERM and SIGKILL (default 5, as DDS)", secondsOption)
    .option("--force", "stop an environment's topology anyway: the environment goes to ERROR")
    .option("--json", "print {topologyId, stopped, killed, unreachable, elapsedMs, environment?}")
    .addHelpText(
      "after",
      `
An environment's topology is refused (exit code 2): end it with \`shoal env control ID -e EXIT\` or
\`shoal env destroy ID\`. With --force its tasks stop and the environment goes to ERROR ("topology stopped
outside the environment"); \`shoal env destroy ID --force\` then forgets it.

Examples:
  $ shoal topology stop
  $ shoal topology stop --id run42 --grace 1 --json`,
    )
    .action(async (opts: { id?: string; grace?: number; force?: boolean; json?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const bar = lazyBar("Stopping on agents", opts.json);
      await using c = await connectCommander(await openSession(name), { onProgress: bar.update });
      const env = await environmentOf(c.init, opts.id, "Stop");
      if (env && !opts.force) refuseEnvironmentStop(env);
      const grace = opts.grace !== undefined ? { graceMs: opts.grace } : {};
      const r = await asCli(async () => {
        if (!env) return { ...(await stopTopology(c.init, opts.id, grace)) };
        const init = { ...c.init, by: `${whoAmI()} (${c.peer.node.peerId.slice(-8)})` };
        const out = await stopEnvironmentTopology(init, env.id, grace);
        return { ...out.stop, environment: { id: out.record.id, state: out.record.state } };
      }).finally(bar.stop);
      if (opts.json) printJson(r);
      else {
        const envNote = "environment" in r
          ? `; environment "${r.environment.id}" is ${r.environment.state}`
          : "";
        process.stdout.write(
          `Stopped "${r.topologyId}": ${r.stopped} task(s)${
            r.killed ? ` (${r.killed} killed after the grace period)` : ""
          } in ${seconds(r.elapsedMs)}${envNote}\n`,
        );
      }
      warnPartial(r.unreachable, "their tasks may still run");
    });
}

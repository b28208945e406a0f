/**
 * `shoal topology activate|update|stop` at work: the CLI as commander (declared in `commands/deploy.ts`).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { type ReconcileRule } from "../agent/mod.ts";
import {
  activateTopology,
  CommanderError,
  type CommanderInit,
  type DeployResult,
  errorText,
  fetchTopologies,
  stopTopology,
  updateTopology,
} from "../commander/mod.ts";
import {
  EnvConflictError,
  EnvNotFoundError,
  type EnvRecord,
  fetchEnvs,
  stopEnvironmentTopology,
} from "../env/mod.ts";
import { parseVarOverrides } from "../topology/mod.ts";
import { connectCommander, whoAmI } from "./commander.ts";
import { CliError, ExitCode } from "./errors.ts";
import { printJson, shortId } from "./format.ts";
import { warnPartial } from "./partial.ts";
import { queueAndWait, seconds } from "./pool_queue.ts";
import { startProgress } from "./progress.ts";
import { openSession } from "./session.ts";
import { loadTopologyForCli } from "./topology_file.ts";

/** Options of `activate` and `update`. */
export interface DeployOptions {
  id?: string;
  reconcile?: ReconcileRule;
  var: string[];
  json?: boolean;
  queue?: boolean;
  priority?: number;
  share?: string;
  wait?: boolean;
}

async function readSource(file: string, vars: string[]) {
  await loadTopologyForCli(file, vars); // every error of the file, before the mesh is touched
  return { file, source: await readFile(file, "utf8"), vars: parseVarOverrides(vars) };
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

/** `shoal topology activate FILE`. */
export async function activate(file: string, opts: DeployOptions, name: string): Promise<void> {
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
}

/** `shoal topology update FILE`. */
export async function update(file: string, opts: DeployOptions, name: string): Promise<void> {
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
}

/** `shoal topology stop`. */
export async function stop(
  opts: { id?: string; grace?: number; force?: boolean; json?: boolean },
  name: string,
): Promise<void> {
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
    const envNote = "environment" in r ? `; environment "${r.environment.id}" is ${r.environment.state}` : "";
    process.stdout.write(
      `Stopped "${r.topologyId}": ${r.stopped} task(s)${
        r.killed ? ` (${r.killed} killed after the grace period)` : ""
      } in ${seconds(r.elapsedMs)}${envNote}\n`,
    );
  }
  warnPartial(r.unreachable, "their tasks may still run");
}

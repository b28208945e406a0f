/**
 * `shoal env`: environments, AliECS's state machine over a topology (`coconut environment`'s shape), and
 * the task side of it (`shoal env transitions --exec`, `next`/`ack`, `go-error`).
 *
 * @module
 */
import type { Command } from "commander";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import process from "node:process";
import { connectTask } from "../../client/mod.ts";
import { CommanderError } from "../../commander/mod.ts";
import {
  aggregateTaskStates,
  controlEnvironment,
  type ControlResult,
  createEnvironment,
  destroyEnvironment,
  EnvConflictError,
  EnvEventRefusedError,
  EnvFileError,
  EnvNotFoundError,
  type EnvRecord,
  EnvTransitionError,
  fetchEnv,
  fetchEnvs,
  parseEnvFile,
} from "../../env/mod.ts";
import { connectCommander, whoAmI } from "../commander.ts";
import { CliError, ExitCode } from "../errors.ts";
import { printJson, table } from "../format.ts";
import { keyValue, priorityOption } from "../options.ts";
import { startProgress } from "../progress.ts";
import { openSession } from "../session.ts";
import { asCli as asTaskCli, inTask } from "../task_helper.ts";
import { loadTopologyForCli } from "../topology_file.ts";
import { queueAndWait } from "../pool_queue.ts";

/** A transition's duration: ms below a second. */
function duration(ms: number): string {
  return ms < 1_000 ? `${Math.round(ms)} ms` : `${(ms / 1_000).toFixed(2)} s`;
}

const who = whoAmI;

async function asCli<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (
      err instanceof EnvEventRefusedError || err instanceof EnvConflictError ||
      err instanceof EnvNotFoundError ||
      err instanceof EnvTransitionError || err instanceof CommanderError || err instanceof EnvFileError
    ) {
      const json = (err as { result?: ControlResult }).result;
      throw Object.assign(
        new CliError(err.message, ExitCode.failure, { cause: err }),
        json ? { result: json } : {},
      );
    }
    throw err;
  }
}

/** A bar per phase, on stderr when it is a terminal. */
function phaseBar(json: boolean | undefined) {
  let bar: ReturnType<typeof startProgress> | undefined;
  let label = "";
  return {
    update: (what: string, done: number, total: number) => {
      if (what !== label) {
        bar?.stop();
        label = what;
        bar = total > 0 ? startProgress(what, total, { quiet: json ?? false }) : undefined;
      }
      bar?.update(done, total);
    },
    stop: () => bar?.stop(),
  };
}

function envJson(r: EnvRecord) {
  return {
    id: r.id,
    state: r.state,
    runNumber: r.runNumber,
    taskState: aggregateTaskStates(Object.values(r.tasks).map((t) => t.state)),
    epoch: r.epoch,
    reason: r.reason ?? null,
    controller: r.controller,
    lastTransition: r.history.at(-1) ?? null,
    history: r.history,
    tasks: Object.entries(r.tasks).map(([path, t]) => ({ path, ...t })),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

function printResult(r: ControlResult, json: boolean | undefined): void {
  if (json) {
    printJson({
      ...envJson(r.record),
      transition: r.transition,
      answers: r.answers,
      hooks: r.hooks,
      warnings: r.warnings,
    });
    return;
  }
  const t = r.transition;
  process.stdout.write(
    `${t.event} "${r.record.id}": ${t.from} → ${r.record.state} in ${duration(t.ms)}` +
      `${r.record.runNumber !== null && r.record.state === "RUNNING" ? ` (run ${r.record.runNumber})` : ""}` +
      `${
        r.answers.length
          ? `, ${r.answers.filter((a) => a.ok).length}/${r.answers.length} task(s) answered ok`
          : ""
      }` +
      `${r.hooks.length ? `, ${r.hooks.length} hook(s)` : ""}\n`,
  );
  for (const w of r.warnings.slice(0, 20)) process.stdout.write(`  warning: ${w}\n`);
  if (r.warnings.length > 20) process.stdout.write(`  … and ${r.warnings.length - 20} more\n`);
}

async function withController<T>(
  cmd: Command,
  json: boolean | undefined,
  fn: (init: Parameters<typeof controlEnvironment>[0]) => Promise<T>,
): Promise<T> {
  const { session: name } = cmd.optsWithGlobals<{ session: string }>();
  const bar = phaseBar(json);
  await using c = await connectCommander(await openSession(name));
  try {
    return await asCli(() =>
      fn({ ...c.init, by: `${who()} (${c.peer.node.peerId.slice(-8)})`, onPhase: bar.update })
    );
  } catch (err) {
    const result = (err as { result?: ControlResult }).result;
    bar.stop();
    if (result) printResult(result, json);
    throw err;
  } finally {
    bar.stop();
  }
}

/** Registers `shoal env`. */
export function registerEnv(program: Command): void {
  const env = program.command("env")
    .addHelpText(
      "after",
      `
Events and states (AliECS): DEPLOY STANDBY→DEPLOYED, CONFIGURE DEPLOYED→CONFIGURED, RESET CONFIGURED→DEPLOYED,
START_ACTIVITY CONFIGURED→RUNNING, STOP_ACTIVITY RUNNING→CONFIGURED, EXIT STANDBY|DEPLOYED|CONFIGURED→DONE,
GO_ERROR any but ERROR/DONE→ERROR, RECOVER ERROR→DEPLOYED.

Examples:
  $ shoal env create readout.env.json --auto START_ACTIVITY
  $ shoal env control readout -e STOP_ACTIVITY
  $ shoal env show readout --json | jq .state
  $ shoal env destroy readout`,
    );

  env.command("create")
    .description("Create an environment from an environment file (or a bare DDS topology) and DEPLOY it")
    .argument("<file>", "environment file (JSON or YAML), or a DDS topology (all tasks then `none`)")
    .option("--id <id>", "environment ID (default: the topology's name)")
    .option("--var <name=value>", "topology variable (repeatable)", keyValue, {})
    .option("--auto <event>", "go on to START_ACTIVITY (CONFIGURE, then START_ACTIVITY) or CONFIGURE")
    .option(
      "--json",
      "print the environment as `env show --json` does; with --queue {topologyId, state, priority, tasks, " +
        "waitedMs, reason?}",
    )
    .option(
      "--queue",
      "wait in the session's pool until the whole topology fits, then DEPLOY (see shoal pool)",
    )
    .option("--priority <p>", "with --queue: higher starts first (default: 0)", priorityOption)
    .option("--share <group>", "with --queue: fair-share group (default: the ID)")
    .option("--no-wait", "with --queue: return once queued, not once DEPLOYED")
    .addHelpText(
      "after",
      `
Returns once the environment is DEPLOYED (its direct and none tasks running), or CONFIGURED/RUNNING with --auto.
With --queue it waits in the pool until every task of its topology fits (basic tasks lease their slots at
START_ACTIVITY as usual), then the pool DEPLOYs it; it leaves the pool when destroyed.

Examples:
  $ shoal env create readout.env.json
  $ shoal env create topo.xml --id plain --var n=4
  $ shoal env create readout.env.json --auto START_ACTIVITY --json
  $ shoal env create readout.env.json --queue --priority 5`,
    )
    .action(
      async (
        file: string,
        opts: {
          id?: string;
          var: Record<string, string>;
          auto?: string;
          json?: boolean;
          queue?: boolean;
          priority?: number;
          share?: string;
          wait?: boolean;
        },
        cmd: Command,
      ) => {
        if (opts.auto && opts.auto !== "CONFIGURE" && opts.auto !== "START_ACTIVITY") {
          throw new CliError(`--auto "${opts.auto}" is not CONFIGURE or START_ACTIVITY`, ExitCode.usage);
        }
        if (opts.queue && opts.auto) {
          throw new CliError(
            "--auto goes without --queue; once DEPLOYED, use `shoal env control`",
            ExitCode.usage,
          );
        }
        if (!opts.queue && (opts.priority !== undefined || opts.share !== undefined || opts.wait === false)) {
          throw new CliError("--priority, --share and --no-wait go with --queue", ExitCode.usage);
        }
        const text = await readFile(file, "utf8").catch((err) => {
          throw new CliError(`Cannot read "${file}": ${err.message}`, ExitCode.usage);
        });
        let parsed;
        try {
          parsed = parseEnvFile(text, file);
        } catch (err) {
          if (err instanceof EnvFileError) throw new CliError(err.message, ExitCode.failure, { cause: err });
          throw err;
        }
        const vars = { ...parsed.vars, ...opts.var };
        const varList = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
        await loadTopologyForCli(parsed.topologyFile, varList);
        const source = await readFile(parsed.topologyFile, "utf8");
        if (opts.queue) {
          const { session: name } = cmd.optsWithGlobals<{ session: string }>();
          return await queueAndWait(
            await openSession(name),
            { file: parsed.topologyFile, source, vars },
            opts,
            { control: parsed.control, by: who() },
          );
        }
        const results = await withController(cmd, opts.json, async (init) => {
          const out = [
            await createEnvironment(init, {
              ...parsed,
              ...(opts.id ? { id: opts.id } : {}),
              topology: { file: parsed.topologyFile, source, vars },
            }),
          ];
          const id = out[0]!.record.id;
          if (opts.auto) out.push(await controlEnvironment(init, id, "CONFIGURE"));
          if (opts.auto === "START_ACTIVITY") out.push(await controlEnvironment(init, id, "START_ACTIVITY"));
          return out;
        });
        if (opts.json) printResult(results.at(-1)!, true);
        else for (const r of results) printResult(r, false);
      },
    );

  env.command("control")
    .description("Send an event to an environment; returns when the transition is done")
    .argument("<id>", "environment ID")
    .requiredOption(
      "-e, --event <event>",
      "CONFIGURE, RESET, START_ACTIVITY, STOP_ACTIVITY, EXIT, GO_ERROR, RECOVER",
    )
    .option(
      "--arg <name=value>",
      "argument given to tasks and hooks with the transition (repeatable)",
      keyValue,
      {},
    )
    .option("--json", "print the environment, the tasks' answers (with ms) and the hooks run")
    .addHelpText(
      "after",
      `
An event the current state does not allow is refused (exit code 1) with the allowed ones named. A failing critical
task or hook sends the environment to ERROR (exit code 1); non-critical failures are reported as warnings.

Examples:
  $ shoal env control readout -e CONFIGURE --arg detector=TPC
  $ shoal env control readout -e START_ACTIVITY --json | jq .runNumber`,
    )
    .action(
      async (
        id: string,
        opts: { event: string; arg: Record<string, string>; json?: boolean },
        cmd: Command,
      ) => {
        const r = await withController(
          cmd,
          opts.json,
          (init) => controlEnvironment(init, id, opts.event.toUpperCase(), opts.arg),
        );
        printResult(r, opts.json);
      },
    );

  env.command("list")
    .description("List environments: ID, state, run number, tasks, last transition")
    .option("--json", "print {environments: [{id, state, runNumber, taskState, tasks, …}]}")
    .option("--all", "include destroyed environments")
    .addHelpText(
      "after",
      "\nExamples:\n  $ shoal env list\n  $ shoal env list --json | jq '.environments[].state'",
    )
    .action(async (opts: { json?: boolean; all?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      await using c = await connectCommander(await openSession(name));
      const all = (await fetchEnvs(c.init)).filter((r) => opts.all || !r.destroyed).sort((a, b) =>
        a.createdAt - b.createdAt
      );
      if (opts.json) return printJson({ environments: all.map(envJson) });
      if (all.length === 0) {
        return void process.stdout.write("No environments; create one with `shoal env create FILE`\n");
      }
      process.stdout.write(
        table(
          ["ID", "STATE", "RUN", "TASKS", "LAST TRANSITION"],
          all.map((r) => {
            const last = r.history.at(-1);
            return [
              r.id + (r.destroyed ? " (destroyed)" : ""),
              r.state,
              r.runNumber ?? "-",
              `${Object.keys(r.tasks).length} ${
                aggregateTaskStates(Object.values(r.tasks).map((t) => t.state))
              }`,
              last
                ? `${last.event} ${last.ok ? "ok" : "failed"} ${new Date(last.startedAt).toISOString()}`
                : "-",
            ];
          }),
        ) + "\n",
      );
    });

  env.command("show")
    .description("Show an environment: state, run number, every task with its state, the last transition")
    .argument("<id>", "environment ID")
    .option(
      "--json",
      "print {id, state, runNumber, taskState, reason, lastTransition, history, tasks: [{path, state, mode, critical}]}",
    )
    .option("--agent <peer>", "read this agent's replica (default: the arbiter's, the freshest)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ shoal env show readout\n  $ shoal env show readout --json | jq '.tasks[] | select(.state == \"ERROR\")'",
    )
    .action(async (id: string, opts: { json?: boolean; agent?: string }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      await using c = await connectCommander(await openSession(name));
      const r = await asCli(async () => {
        if (!opts.agent) return await fetchEnv(c.init, id);
        const found = (await fetchEnvs(c.init, opts.agent)).find((x) => x.id === id && !x.destroyed);
        if (!found) throw new EnvNotFoundError(`Agent ${opts.agent} holds no environment "${id}"`);
        return found;
      });
      if (opts.json) return printJson(envJson(r));
      const last = r.history.at(-1);
      const lines = [
        `Environment "${r.id}": ${r.state}${r.reason ? ` (${r.reason})` : ""}`,
        `run number: ${r.runNumber ?? "-"}   tasks: ${
          aggregateTaskStates(Object.values(r.tasks).map((t) => t.state))
        }`,
        last
          ? `last transition: ${last.event} ${last.from} → ${last.to}, ${last.ok ? "ok" : "failed"} in ${
            duration(last.ms)
          }, asked by ${last.by}${last.reason ? ` — ${last.reason}` : ""}`
          : "last transition: -",
        ...(r.controller ? [`in progress: ${r.controller.event} by ${r.controller.by}`] : []),
        "",
        table(
          ["TASK", "MODE", "CRITICAL", "STATE", "REASON"],
          Object.entries(r.tasks).map((
            [p, t],
          ) => [p, t.mode, t.critical ? "yes" : "no", t.state, t.reason ?? ""]),
        ),
      ];
      process.stdout.write(lines.join("\n") + "\n");
    });

  env.command("destroy")
    .description("End an environment: EXIT (its tasks stop), then forget it; --force from RUNNING or ERROR")
    .argument("<id>", "environment ID")
    .option("--force", "stop its tasks from any state")
    .option("--json", "print the final environment")
    .addHelpText("after", "\nExamples:\n  $ shoal env destroy readout\n  $ shoal env destroy readout --force")
    .action(async (id: string, opts: { force?: boolean; json?: boolean }, cmd: Command) => {
      const r = await withController(
        cmd,
        opts.json,
        (init) => destroyEnvironment(init, id, { force: opts.force ?? false }),
      );
      if (opts.json) printJson(envJson(r));
      else process.stdout.write(`Destroyed environment "${r.id}"\n`);
    });

  registerTaskSide(env);
}

function needTask(): void {
  if (!inTask()) {
    throw new CliError(
      "This runs inside a shoal task (SHOAL_SOCKET and SHOAL_TASK_TOKEN are not set)",
      ExitCode.usage,
    );
  }
}

function registerTaskSide(env: Command): void {
  env.command("transitions")
    .description("In a direct task: answer every environment transition with a script's exit code")
    .requiredOption(
      "--exec <script>",
      "run for each transition; exit 0 = ok, else its last stderr line is the error",
    )
    .option("--once", "answer one transition, then exit")
    .addHelpText(
      "after",
      `
The script gets SHOAL_ENV_EVENT, SHOAL_ENV_FROM, SHOAL_ENV_TO, SHOAL_ENV_ID, SHOAL_RUN_NUMBER, SHOAL_ENV_ARGS (JSON) and
SHOAL_ENV_ARG_<NAME> for every --arg. Runs until the task is stopped.

Examples:
  $ shoal env transitions --exec ./on-transition.sh`,
    )
    .action(async (opts: { exec: string; once?: boolean }) => {
      needTask();
      const task = connectTask();
      await asTaskCli(async () => {
        for await (const t of task.transitions(opts.once ? { max: 1 } : {})) {
          const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
            const child = spawn("/bin/sh", ["-c", `exec ${opts.exec}`], {
              stdio: ["ignore", "inherit", "pipe"],
              env: {
                ...process.env,
                SHOAL_ENV_EVENT: t.event,
                SHOAL_ENV_FROM: t.from,
                SHOAL_ENV_TO: t.to,
                SHOAL_ENV_ID: t.envId,
                SHOAL_RUN_NUMBER: t.runNumber === null ? "" : String(t.runNumber),
                SHOAL_ENV_ARGS: JSON.stringify(t.args),
                ...Object.fromEntries(
                  Object.entries(t.args).map(([k, v]) => [`SHOAL_ENV_ARG_${k.toUpperCase()}`, v]),
                ),
              },
            });
            let err = "";
            child.stderr!.on("data", (d) => {
              process.stderr.write(d);
              err = (err + d).slice(-2_000);
            });
            child.on("error", (e) => resolve({ code: null, err: e.message }));
            child.on("close", (code) => resolve({ code, err }));
          });
          if (r.code === 0) await t.ok();
          else await t.error(r.err.trim().split("\n").at(-1) || `${opts.exec} exited with code ${r.code}`);
        }
      });
    });

  env.command("next")
    .description("In a direct task: wait for the next transition and print it (answer with `shoal env ack`)")
    .option("--json", "print {id, event, from, to, args, runNumber}")
    .addHelpText(
      "after",
      '\nExamples:\n  $ t=$(shoal env next --json); shoal env ack "$(echo "$t" | jq -r .id)"',
    )
    .action(async (opts: { json?: boolean }) => {
      needTask();
      await asTaskCli(async () => {
        for await (const t of connectTask().transitions({ max: 1 })) {
          const { ok: _ok, error: _error, ...plain } = t;
          if (opts.json) printJson(plain);
          else process.stdout.write(`${t.id} ${t.event} ${t.from} ${t.to} ${t.runNumber ?? "-"}\n`);
        }
      });
    });

  env.command("ack")
    .description("In a direct task: answer a transition (ok, or --error MESSAGE)")
    .argument("<id>", "the transition's ID (from `shoal env next`)")
    .option("--error <message>", "the transition failed for this task")
    .addHelpText(
      "after",
      '\nExamples:\n  $ shoal env ack "$id"\n  $ shoal env ack "$id" --error \'no calibration file\'',
    )
    .action(async (id: string, opts: { error?: string }) => {
      needTask();
      await asTaskCli(() => connectTask().answer(id, opts.error !== undefined ? { error: opts.error } : {}));
    });

  env.command("go-error")
    .description("In a task: send its environment to ERROR (AliECS GO_ERROR) with a reason")
    .argument("<message>", "why")
    .addHelpText("after", "\nExamples:\n  $ shoal env go-error 'link down on CRU 3'")
    .action(async (message: string) => {
      needTask();
      await asTaskCli(() => connectTask().goError(message));
    });
}

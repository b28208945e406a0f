/**
 * The `shoal` command: agent, CLI and task helper in one binary.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { SHOAL_VERSION } from "../mesh/mod.ts";
import { registerAgent } from "./commands/agent.ts";
import { registerCmd } from "./commands/cmd.ts";
import { registerColl } from "./commands/coll.ts";
import { registerDemo } from "./commands/demo.ts";
import { registerDeploy } from "./commands/deploy.ts";
import { registerDown } from "./commands/down.ts";
import { registerEnv } from "./commands/env.ts";
import { registerInfo } from "./commands/info.ts";
import { registerKv } from "./commands/kv.ts";
import { registerLogs } from "./commands/logs.ts";
import { registerMonitor } from "./commands/monitor.ts";
import { registerPilot } from "./commands/pilot.ts";
import { registerPool } from "./commands/pool.ts";
import { registerPs } from "./commands/ps.ts";
import { registerStage } from "./commands/stage.ts";
import { registerSubmit } from "./commands/submit.ts";
import { registerTop } from "./commands/top.ts";
import { registerTopology } from "./commands/topology.ts";
import { registerUi } from "./commands/ui.ts";
import { registerUp } from "./commands/up.ts";
import { CliError, ExitCode } from "./errors.ts";
import { brokenPipe, flushStdio } from "./exit_hooks.ts";

/** Builds the command tree. */
export function buildProgram(): Command {
  const program = new Command("shoal")
    .description(
      "Spawn and control many tasks tied together by a topology, over a private peer-to-peer mesh.\n" +
        "Runs DDS topology files; no central server.",
    )
    .version(SHOAL_VERSION, "-V, --version")
    .option("--session <name>", "session to use", process.env.SHOAL_SESSION || "default")
    .option("--debug", "print stack traces of errors")
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .addHelpText(
      "after",
      `
Examples:
  $ shoal up --agents 3 --slots 2      start a local mesh of 3 agents
  $ shoal info                         agents, slots, uptime
  $ shoal monitor --json               one JSON line per event
  $ shoal pool                         the shared pool: queued topologies, their share, agents by state
  $ shoal ui                           a live web dashboard (prints its URL with an access token)
  $ shoal stage put ./calib.root       every agent gets $SHOAL_STAGE/calib.root (a swarm of chunks)
  $ shoal down                         stop the session's agents

Environment: SHOAL_HOME (default ~/.shoal), SHOAL_SESSION (default "default").
Exit codes: 0 ok, 1 failed, 2 bad usage, 3 no such session, 4 mesh unreachable, 5 timed out, 6 partial result (some agents did not answer; named on stderr), 130 interrupted.`,
    );
  registerUp(program);
  registerSubmit(program);
  registerPilot(program);
  registerDown(program);
  registerInfo(program);
  registerMonitor(program);
  registerPs(program);
  registerLogs(program);
  registerDeploy(registerTopology(program));
  registerAgent(program);
  registerKv(program);
  registerCmd(program);
  registerColl(program);
  registerEnv(program);
  registerPool(program);
  registerDemo(program);
  registerUi(program);
  registerTop(program);
  registerStage(program);
  const quiet = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ outputError: () => {} });
    cmd.commands.forEach(quiet);
  };
  program.commands.forEach(quiet);
  return program;
}

/** Runs the CLI with `argv` (without the executable) and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes("--debug");
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0;
      process.stderr.write(`shoal: ${err.message.replace(/^error: /, "")}\n`);
      process.stderr.write(
        `Run \`shoal ${argv[0] && !argv[0].startsWith("-") ? `${argv[0]} ` : ""}--help\` for usage.\n`,
      );
      return ExitCode.usage;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`shoal: ${e.message}\n`);
    const failures = (e as { failures?: { host: string; step?: string; reason: string }[] }).failures;
    for (const f of Array.isArray(failures) ? failures : []) {
      process.stderr.write(`  ${f.host}${f.step ? ` [${f.step}]` : ""}: ${f.reason}\n`);
    }
    if (debug) process.stderr.write(`${e.stack ?? ""}\n${e.cause ? `cause: ${String(e.cause)}\n` : ""}`);
    if (err instanceof CliError) return err.exitCode;
    if (err instanceof RangeError || err instanceof TypeError) return ExitCode.usage;
    if (e.name === "SwarmKeyError") return ExitCode.noSession;
    return ExitCode.failure;
  }
}

if (import.meta.main) {
  // A closed pipe (`shoal info | head`) is not an error of ours.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") brokenPipe(typeof process.exitCode === "number" ? process.exitCode : 0);
  });
  // Dials still pending to agents that never answered are aborted as the command ends: noise, not errors.
  const aborted = (err: unknown) => {
    const name = (err as Error | undefined)?.name;
    if (name === "AbortError" || name === "TimeoutError") return;
    process.stderr.write(`shoal: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = ExitCode.failure;
  };
  process.on("unhandledRejection", aborted);
  process.on("uncaughtException", aborted);
  const code = await run(process.argv.slice(2));
  await flushStdio();
  // libp2p leaves timers and sockets behind after stop(); the work is done, so leave now.
  process.exit(code);
}

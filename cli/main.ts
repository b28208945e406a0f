/**
 * The `shoal` command: agent, CLI and task helper in one binary.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
// Leaf modules, not the areas' mod.ts: `shoal --version` should not load libp2p.
import { SwarmKeyError } from "../mesh/errors.ts";
import { SHOAL_VERSION } from "../mesh/version.ts";
import { SubmitError } from "../rms/errors.ts";
import { CliError, ExitCode } from "./errors.ts";
import { brokenPipe, flushStdio } from "./exit_hooks.ts";

/** A top-level command: what `shoal --help` lists, and how to load the module that declares it. */
interface CommandEntry {
  name: string;
  summary: string;
  /** Imports the command's module (and what it imports) and returns its register function. */
  load: () => Promise<(program: Command) => void>;
}

/**
 * Every top-level command, in the order `shoal --help` lists them. A command's module (and through it the
 * mesh stack, for most) is imported only when the command line names it: `shoal --version`, `shoal --help`
 * and `shoal topology validate` need no libp2p.
 */
const COMMANDS: readonly CommandEntry[] = [
  {
    name: "up",
    summary: "Start a mesh of agents in a session (created if needed) and wait until they joined",
    load: async () => (await import("./commands/up.ts")).registerUp,
  },
  {
    name: "submit",
    summary:
      "Start more agents for the session (DDS dds-submit): on this machine, over ssh, via Slurm or Grid Engine",
    load: async () => (await import("./commands/submit.ts")).registerSubmit,
  },
  {
    name: "pilot",
    summary: "Show the pilot (start-up steps) a plug-in runs for a resource type, or its script",
    load: async () => (await import("./commands/pilot.ts")).registerPilot,
  },
  {
    name: "down",
    summary: "Stop the session's agents: SIGTERM, then SIGKILL after the grace period",
    load: async () => (await import("./commands/down.ts")).registerDown,
  },
  {
    name: "info",
    summary: "Show the session's agents: peer IDs, hosts, states, slots, uptime",
    load: async () => (await import("./commands/info.ts")).registerInfo,
  },
  {
    name: "monitor",
    summary: "Watch the mesh: agents joining, turning suspect, dying, leaving; task and topology events",
    load: async () => (await import("./commands/monitor.ts")).registerMonitor,
  },
  {
    name: "ps",
    summary: "List tasks: path, agent, pid, state, restarts, uptime",
    load: async () => (await import("./commands/ps.ts")).registerPs,
  },
  {
    name: "logs",
    summary: "Show tasks' stdout and stderr from the agents that run them; follow them live with -f",
    load: async () => (await import("./commands/logs.ts")).registerLogs,
  },
  {
    name: "topology",
    summary: "Validate, view, compare and (with a mesh) activate DDS topologies",
    load: async () => {
      const [{ registerTopology }, { registerDeploy }] = await Promise.all([
        import("./commands/topology.ts"),
        import("./commands/deploy.ts"),
      ]);
      return (program) => registerDeploy(registerTopology(program));
    },
  },
  {
    name: "agent",
    summary: "Run an agent in the foreground: join the mesh and offer task slots",
    load: async () => (await import("./commands/agent.ts")).registerAgent,
  },
  {
    name: "kv",
    summary: "Key-value properties of the running topology (tasks write, tasks and tools read)",
    load: async () => (await import("./commands/kv.ts")).registerKv,
  },
  {
    name: "cmd",
    summary: "Custom commands between tasks and tools, routed by DDS conditions, with replies",
    load: async () => (await import("./commands/cmd.ts")).registerCmd,
  },
  {
    name: "coll",
    summary: "Collectives among the topology's tasks: barrier, broadcast, gather, reduce, …",
    load: async () => (await import("./commands/coll.ts")).registerColl,
  },
  {
    name: "env",
    summary: "Environments: AliECS's state machine (DEPLOY, CONFIGURE, START_ACTIVITY, …) over a topology",
    load: async () => (await import("./commands/env.ts")).registerEnv,
  },
  {
    name: "pool",
    summary: "The session's shared pool: queued topologies, their share and demand, agents by state",
    load: async () => (await import("./commands/pool.ts")).registerPool,
  },
  {
    name: "demo",
    summary: "Run the embedded sample topology on a local mesh, as a tour, and clean up",
    load: async () => (await import("./commands/demo.ts")).registerDemo,
  },
  {
    name: "ui",
    summary:
      "Serve a live web dashboard of the session: agents, task trees, logs, key-values, commands, environments",
    load: async () => (await import("./commands/ui.ts")).registerUi,
  },
  {
    name: "top",
    summary: "Show the busiest tasks across the mesh by CPU and memory (their whole process trees)",
    load: async () => (await import("./commands/top.ts")).registerTop,
  },
  {
    name: "stage",
    summary: "Place files on agents (a swarm: agents pull chunks from each other), list and remove them",
    load: async () => (await import("./commands/stage.ts")).registerStage,
  },
];

/**
 * Builds the command tree. With `argv`, only the commands it names are declared in full (the others are
 * listed by name and summary, enough for `shoal --help`); without, every command is.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
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
  const registers = await Promise.all(
    COMMANDS.map((c) => argv === undefined || argv.includes(c.name) ? c.load() : undefined),
  );
  COMMANDS.forEach((c, i) => {
    const register = registers[i];
    if (register) register(program);
    else {
      // Not named by argv, so never run: listed by `shoal --help` only.
      program.command(c.name).action(() => {
        throw new Error(`Internal error: command "${c.name}" was run but not loaded`);
      });
    }
    program.commands.find((cmd) => cmd.name() === c.name)!.description(c.summary);
  });
  // Listed by name alone: a command not loaded does not know its options and arguments.
  program.configureHelp({ subcommandTerm: (cmd) => cmd.name() });
  const quiet = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ outputError: () => {} });
    cmd.commands.forEach(quiet);
  };
  program.commands.forEach(quiet);
  return program;
}

/** Runs the CLI with `argv` (without the executable) and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
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
    for (const f of err instanceof SubmitError ? err.failures : []) {
      process.stderr.write(`  ${f.host}${f.step ? ` [${f.step}]` : ""}: ${f.reason}\n`);
    }
    if (debug) process.stderr.write(`${e.stack ?? ""}\n${e.cause ? `cause: ${String(e.cause)}\n` : ""}`);
    if (err instanceof CliError) return err.exitCode;
    if (err instanceof RangeError || err instanceof TypeError) return ExitCode.usage;
    if (err instanceof SwarmKeyError) return ExitCode.noSession;
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

/**
 * `shoal topology activate|update|stop`: the CLI as commander. Declared here; the work, and the mesh stack
 * it needs, is loaded when one runs (`../topology_deploy.ts`).
 *
 * @module
 */
import { type Command, Option } from "commander";
// The rules alone, not agent/mod.ts: loading the agent area would cost every `shoal topology …` its time.
import { RECONCILE_RULES } from "../../agent/desired/mod.ts";
import { priorityOption, secondsOption } from "../options.ts";
import type { DeployOptions } from "../topology_deploy.ts";
import { addVarOption } from "../topology_file.ts";

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
    const { activate } = await import("../topology_deploy.ts");
    await activate(file, opts, cmd.optsWithGlobals<{ session: string }>().session);
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
    const { update } = await import("../topology_deploy.ts");
    await update(file, opts, cmd.optsWithGlobals<{ session: string }>().session);
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
      const { stop } = await import("../topology_deploy.ts");
      await stop(opts, cmd.optsWithGlobals<{ session: string }>().session);
    });
}

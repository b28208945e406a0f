/**
 * `shoal topology validate|view|diff`: DDS topology files without a mesh.
 *
 * @module
 */
import type { Command } from "commander";
import {
  diffJson,
  diffTopologies,
  expandTopology,
  formatDiff,
  formatTree,
  parseVarOverrides,
  validateFiles,
  viewJson,
} from "../../topology/mod.ts";
import { ExitCode } from "../errors.ts";
import { printJson } from "../format.ts";
import { addVarOption, loadTopologyForCli } from "../topology_file.ts";

/** Registers `shoal topology` and its file-only subcommands; returns it for more subcommands. */
export function registerTopology(program: Command): Command {
  const topology = program.command("topology")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal topology validate topo.xml other.xml
  $ shoal topology view topo.xml --var nInstances=10
  $ shoal topology diff old.xml new.xml --json`,
    );

  addVarOption(
    topology.command("validate")
      .description("Check topology files against DDS's schema and references; list every error")
      .argument("<file...>", "topology files (DDS XML or shoal JSON)")
      .option("--json", "print {ok, issues: [{file, line, column, name, message, hint}]}")
      .addHelpText(
        "after",
        `
Exit code 0 when every file is valid, 1 otherwise.

Examples:
  $ shoal topology validate topo.xml
  $ shoal topology validate --var n=4 a.xml b.xml --json`,
      ),
  ).action(async (files: string[], opts: { json?: boolean; var: string[] }) => {
    const result = await validateFiles(files, { vars: parseVarOverrides(opts.var) });
    if (opts.json) printJson({ ok: result.ok, issues: result.issues });
    else process.stdout.write(result.text + "\n");
    if (!result.ok) process.exitCode = ExitCode.failure;
  });

  addVarOption(
    topology.command("view")
      .description(
        "Show a topology: its declarations as a tree, or every runtime task and collection as JSON",
      )
      .argument("<file>", "topology file (DDS XML or shoal JSON)")
      .option(
        "--json",
        "print {tasks: [{path, id, name, index, collectionIndex, exe}], collections: [{path}]}",
      )
      .addHelpText(
        "after",
        `
Examples:
  $ shoal topology view topo.xml
  $ shoal topology view topo.xml --json | jq '.tasks | length'`,
      ),
  ).action(async (file: string, opts: { json?: boolean; var: string[] }) => {
    const topo = await loadTopologyForCli(file, opts.var);
    if (opts.json) printJson(viewJson(expandTopology(topo)));
    else process.stdout.write(formatTree(topo) + "\n");
  });

  addVarOption(
    topology.command("diff")
      .description(
        "Compare two topologies as DDS's update does: removed and added runtime tasks and collections",
      )
      .argument("<old>", "the active topology")
      .argument("<new>", "the topology to update to")
      .option("--json", "print {removedTasks, addedTasks, removedCollections, addedCollections}")
      .addHelpText(
        "after",
        `
Examples:
  $ shoal topology diff v1.xml v2.xml
  $ shoal topology diff v1.xml v2.xml --json | jq '.addedTasks'`,
      ),
  ).action(async (oldFile: string, newFile: string, opts: { json?: boolean; var: string[] }) => {
    const [a, b] = await Promise.all([
      loadTopologyForCli(oldFile, opts.var),
      loadTopologyForCli(newFile, opts.var),
    ]);
    const diff = diffTopologies(expandTopology(a), expandTopology(b));
    if (opts.json) printJson(diffJson(diff));
    else process.stdout.write(formatDiff(diff) + "\n");
  });
  return topology;
}

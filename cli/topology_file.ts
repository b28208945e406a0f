/**
 * Topology files as every command that takes one reads them: `--var` overrides, every issue in one error.
 *
 * @module
 */
import type { Command } from "commander";
import { formatIssues, loadTopology, parseVarOverrides, TopologyValidationError } from "../topology/mod.ts";
import { CliError, ExitCode } from "./errors.ts";
import { collect } from "./options.ts";

/** `--var name=value` on every topology command. */
export function addVarOption(cmd: Command): Command {
  return cmd.option("--var <name=value>", "override a topology variable (repeatable)", collect, []);
}

/** Loads a topology file, turning its issues into one CLI error listing them all. */
export async function loadTopologyForCli(file: string, vars: string[]) {
  try {
    return await loadTopology(file, { vars: parseVarOverrides(vars) });
  } catch (err) {
    if (err instanceof TopologyValidationError) {
      throw new CliError(
        `Topology "${file}" is invalid (${err.issues.length} issue(s)):\n${formatIssues(err.issues)}`,
        ExitCode.failure,
        { cause: err },
      );
    }
    throw err;
  }
}

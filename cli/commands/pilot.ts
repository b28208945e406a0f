/**
 * `shoal pilot show|script`: the pilot a plug-in would run for a resource type — its resolved steps and
 * where each came from, or the bash script itself, which runs anywhere with only bash and coreutils.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import {
  getRms,
  type PilotResolution,
  RMS_NAMES,
  type RmsConfig,
  RmsConfigError,
  type RmsPlugin,
} from "../../rms/mod.ts";
import { CliError, ExitCode } from "../errors.ts";
import { printJson, table } from "../format.ts";
import { intOption, keyValue } from "../options.ts";
import { selfCommand } from "../self_command.ts";
import { openSession } from "../session.ts";
import { meshAddrs } from "../agents_submit.ts";

interface PilotOptions {
  rms: string;
  rmsConfig?: string;
  resource?: string;
  pilots?: string;
  json?: boolean;
}

interface ScriptOptions extends PilotOptions {
  slots: number;
  group?: string;
  label?: Record<string, string>;
  agents: number;
  output?: string;
}

/** The plug-in and its config, or a usage error for one that runs no pilots. */
async function pluginOf(opts: PilotOptions): Promise<{ plugin: RmsPlugin; config: RmsConfig }> {
  const plugin = getRms(opts.rms);
  if (!plugin.pilotSteps) {
    const with_ = RMS_NAMES.filter((n) => getRms(n).pilotSteps).join(", ");
    throw new CliError(
      `The ${plugin.name} plug-in starts agents without a pilot; pilots are run by ${with_}`,
      ExitCode.usage,
    );
  }
  if (!opts.rmsConfig) return { plugin, config: {} };
  try {
    return { plugin, config: await plugin.loadConfig!(opts.rmsConfig) };
  } catch (err) {
    if (err instanceof RmsConfigError) throw new CliError(err.message, ExitCode.usage, { cause: err });
    throw err;
  }
}

/** Resolution errors (a bad pilots file or step) are usage errors naming the file. */
async function usage<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RmsConfigError || err instanceof RangeError) {
      throw new CliError((err as Error).message, ExitCode.usage, { cause: err });
    }
    throw err;
  }
}

function printResolution(r: PilotResolution, rms: string): void {
  const chain = [...r.chain, "built-in"].map((c) => (c === r.base ? `[${c}]` : c)).join(" → ");
  process.stdout.write(
    `Pilot of ${r.resource} (plug-in ${rms})${r.file ? `, pilots file ${r.file}` : ", no pilots file"}\n` +
      `Looked up: ${chain}; the list of ${r.base}${
        r.layers.filter((l) => l !== r.base).length
          ? `, with the inserts of ${r.layers.filter((l) => l !== r.base).join(", ")}`
          : ""
      }\n\n`,
  );
  process.stdout.write(
    table(["#", "STEP", "FROM"], r.steps.map((s, i) => [i + 1, s.name, s.source ?? "built-in"])) + "\n",
  );
}

const COMMON_HELP = `
Resource types: a plug-in ("slurm") or one of its site resources ("slurm:gpu-partition"); --resource
defaults to the Slurm partition or the SGE queue of the plug-in config. The list of a resource is the first
found along resource → plug-in → "defaults" in the pilots file (--pilots, or "pilots" in the plug-in config),
else the plug-in's built-in list; more specific entries' inserts go on top, then the config's own "pilot".
Steps are looked up by name in the pilots file's step directories (<name>.sh) before the built-ins
(check-env, stage-binary, write-config, start-agent, report, wait-agent).

pilots.yaml:
  stepDirs: [site-steps]
  resources:
    defaults: [check-env, site-env, stage-binary, write-config, start-agent, report]
    slurm:gpu-partition: { insert: [{ name: gpu-check, before: start-agent }] }`;

/** Registers `shoal pilot`. */
export function registerPilot(program: Command): void {
  const pilot = program.command("pilot")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal pilot show --rms slurm -c slurm.json                       the steps, where each comes from
  $ shoal pilot show --rms slurm -c slurm.json --resource gpu-partition --json
  $ shoal pilot script --rms sge -c sge.json > pilot.sh && env -i bash pilot.sh`,
    );
  const common = (cmd: Command) =>
    cmd
      .option("--rms <name>", "plug-in whose pilot it is (ssh, slurm, sge)", "slurm")
      .option("-c, --rms-config <file>", "plug-in config (as for shoal submit)")
      .option("--resource <name>", "site resource (default: the config's Slurm partition or SGE queue)")
      .option("--pilots <file>", 'pilots file (default: the config\'s "pilots")');

  common(pilot.command("show"))
    .description("The resolved step list of a resource type and where each step comes from")
    .option("--json", "print {rms, resource, chain, base, layers, file, steps: [{name, source, run}]}")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal pilot show --rms slurm -c slurm.json
  $ shoal pilot show --rms slurm -c slurm.json --resource gpu-partition
  $ shoal pilot show --rms sge --pilots pilots.yaml --resource long.q --json | jq -r '.steps[].name'
${COMMON_HELP}

Exit codes: 0 ok, 2 bad usage, a bad pilots file or an unknown step (named with its file and resource).`,
    )
    .action(async (opts: PilotOptions) => {
      const { plugin, config } = await pluginOf(opts);
      const r = await usage(() =>
        plugin.pilotSteps!({
          config,
          ...(opts.resource ? { resource: opts.resource } : {}),
          ...(opts.pilots ? { pilots: opts.pilots } : {}),
        })
      );
      if (opts.json) printJson({ rms: plugin.name, ...r });
      else printResolution(r, plugin.name);
    });

  common(pilot.command("script"))
    .description("The bash script of one pilot of the session, as shoal submit would run it")
    .option("-s, --slots <n>", "task slots of its agent", intOption(1), 1)
    .option("-g, --group <name>", "group name the agent announces")
    .option("--label <key=value>", "label the agent announces (repeatable)", keyValue)
    .option(
      "-n, --agents <n>",
      "pilots in the job it stands for (the first founds a mesh with none)",
      intOption(1),
      1,
    )
    .option("-o, --output <file>", "write it to this file (mode 0700) instead of stdout")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal pilot script --rms slurm -c slurm.json > pilot.sh && env -i bash pilot.sh
  $ shoal pilot script --rms sge -c sge.json --resource gpu.q -s 8 -o pilot.sh

The script holds the session's swarm key and the addresses of its running agents: run it on any host that
reaches them (it needs only bash and coreutils; a batch system's variables are used when set) and its agent
joins the session's mesh; SIGTERM stops it. Keep the file private.
${COMMON_HELP}

Exit codes: 0 ok, 2 bad usage, 3 no such session.`,
    )
    .action(async (opts: ScriptOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const { plugin, config } = await pluginOf(opts);
      if (!plugin.pilotScript) {
        throw new CliError(
          `The ${plugin.name} plug-in writes a pilot per host as it submits; \`shoal pilot show --rms ${plugin.name}\` ` +
            `shows its steps`,
          ExitCode.usage,
        );
      }
      const session = await openSession(name);
      const ref = await session.ref();
      ref.bootstrap = await meshAddrs(session, AbortSignal.timeout(30_000));
      const script = await usage(() =>
        plugin.pilotScript!({
          session: ref,
          count: opts.agents,
          slots: opts.slots,
          self: selfCommand(),
          config,
          ...(opts.group ? { group: opts.group } : {}),
          ...(opts.label && Object.keys(opts.label).length ? { labels: opts.label } : {}),
          ...(opts.resource ? { resource: opts.resource } : {}),
          ...(opts.pilots ? { pilots: opts.pilots } : {}),
        })
      );
      if (opts.output) writeFileSync(opts.output, script, { mode: 0o700 });
      else process.stdout.write(script);
    });
}

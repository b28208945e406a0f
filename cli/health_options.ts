/**
 * `--min-free-disk` and `--max-load` of the commands that start agents (`up`, `submit`, `pool grow`).
 *
 * @module
 */
import { Option } from "commander";
import { DEFAULT_MIN_FREE_DISK, formatBytes } from "../pool/health.ts";
import { bytesOption, positiveNumberOption } from "./options.ts";

/** `--min-free-disk` and `--max-load` of a command that starts agents. */
export interface AgentHealthOptions {
  minFreeDisk?: number;
  maxLoad?: number;
}

/** `--min-free-disk` and `--max-load` for the agents a command starts (through any plug-in): add both. */
export function agentHealthOptions(): Option[] {
  return [
    new Option(
      "--min-free-disk <size>",
      `each agent takes no leases while its data disk has less free (e.g. 2GB; 0: no check) (default: ${
        formatBytes(DEFAULT_MIN_FREE_DISK)
      })`,
    ).argParser(bytesOption),
    new Option(
      "--max-load <n>",
      "each agent takes no leases while its 1-minute load average stays above <n> (default: no limit)",
    ).argParser(positiveNumberOption),
  ];
}

/** The health part of a command's options, for {@linkcode submitAgents}. */
export function healthOf(opts: AgentHealthOptions): { health?: AgentHealthOptions } {
  const h = {
    ...(opts.minFreeDisk !== undefined ? { minFreeDisk: opts.minFreeDisk } : {}),
    ...(opts.maxLoad !== undefined ? { maxLoad: opts.maxLoad } : {}),
  };
  return Object.keys(h).length ? { health: h } : {};
}

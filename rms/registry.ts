/**
 * Plug-ins by name.
 *
 * @module
 */
import { createLocalhostRms } from "./localhost.ts";
import { createSgeRms } from "./sge.ts";
import { createSlurmRms } from "./slurm.ts";
import { createSshRms } from "./ssh.ts";
import type { RmsPlugin } from "./types.ts";

const FACTORIES: Record<string, () => RmsPlugin> = {
  localhost: createLocalhostRms,
  ssh: createSshRms,
  slurm: createSlurmRms,
  sge: createSgeRms,
};

/** Names of the available plug-ins. */
export const RMS_NAMES: readonly string[] = Object.keys(FACTORIES);

/** Returns the plug-in called `name`. */
export function getRms(name: string): RmsPlugin {
  const factory = FACTORIES[name];
  if (!factory) {
    throw new RangeError(`Unknown RMS plug-in "${name}"; choose one of: ${RMS_NAMES.join(", ")}`);
  }
  return factory();
}

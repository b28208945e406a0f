/**
 * Pilots per resource type, as DIRAC's Pilot resolves its command lists per computing-element type: a
 * pilots file (JSON or YAML) maps resource types — a plug-in (`slurm`) or a named site resource of it
 * (`slurm:gpu-partition`, `sge:long.q`) — to step lists, and the list of a resource is the first one
 * found along `resource → plug-in → defaults`, then the plug-in's built-in list. An entry is a list of
 * step names (the whole list) or `{ steps?, insert? }`: without `steps` it takes the next entry's list,
 * and its `insert`s go on top, so `slurm:gpu-partition: { insert: [gpu-check] }` is "what slurm gets,
 * plus a GPU check". Steps are found by name first in the site step directories (`<name>.sh`, bash run
 * in the pilot's shell; earlier directories first, as DIRAC looks in `<EXT>Commands` before
 * `pilotCommands`), then among the built-ins, so a site step may replace a built-in of its name.
 *
 * ```yaml
 * stepDirs: [site-steps]            # relative to this file
 * resources:
 *   defaults: [check-env, site-env, stage-binary, write-config, start-agent, report]
 *   slurm:gpu-partition: { insert: [{ name: gpu-check, before: start-agent }] }
 *   sge: { insert: [{ name: scratch, after: check-env }] }
 * ```
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import * as v from "valibot";
import { parse as parseYaml } from "yaml";
import { RmsConfigError } from "./errors.ts";
import {
  BUILTIN_STEPS,
  builtinStep,
  defaultPilot,
  type PilotConfig,
  type PilotMode,
  type PilotStep,
  resolvePilot,
  StepInsertSchema,
  StepListSchema,
  StepName,
} from "./pilot.ts";

const ResourceName = v.pipe(
  v.string(),
  v.regex(
    /^(defaults|[a-z][a-z0-9_-]*(:[A-Za-z0-9][A-Za-z0-9._@-]*)?)$/,
    'a resource is "defaults", a plug-in ("slurm") or a plug-in and a site resource ("slurm:gpu-partition")',
  ),
);

const EntrySchema = v.union([
  StepListSchema,
  v.strictObject({ steps: v.optional(StepListSchema), insert: v.optional(StepInsertSchema) }),
]);

/** A pilots file as written. */
export const PilotsFileSchema = v.strictObject({
  /** Directories of site steps (`<name>.sh`), relative to the file; earlier ones first. */
  stepDirs: v.optional(v.union([v.string(), v.array(v.string())])),
  /** Step lists by resource type. */
  resources: v.optional(v.record(ResourceName, EntrySchema)),
});

/** A loaded pilots file: its entries and its site steps. */
export interface PilotsFile {
  /** The file's absolute path. */
  file: string;
  resources: Record<string, PilotConfig>;
  /** Site steps by name (the first directory holding a name wins). */
  siteSteps: Map<string, PilotStep>;
}

/** Reads a pilots file and its step directories; throws `RmsConfigError` naming the file and field. */
export function loadPilotsFile(path: string): PilotsFile {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new RmsConfigError(file, `Cannot read the pilots file (${(cause as Error).message})`, { cause });
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (cause) {
    const line = (cause as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new RmsConfigError(
      file,
      `Not valid JSON or YAML (${(cause as Error).message.split("\n")[0]})`,
      line ? { cause, line } : { cause },
    );
  }
  const r = v.safeParse(PilotsFileSchema, data ?? {});
  if (!r.success) {
    const issue = r.issues[0];
    const where = issue.path?.map((p: { key: unknown }) => String(p.key)).join(".") ?? "";
    throw new RmsConfigError(file, `${where ? `"${where}": ` : ""}${issue.message}`);
  }
  const resources: Record<string, PilotConfig> = {};
  for (const [name, entry] of Object.entries(r.output.resources ?? {})) {
    resources[name] = Array.isArray(entry) ? { steps: entry } : entry;
  }
  const dirs = [r.output.stepDirs ?? []].flat().map((d) => isAbsolute(d) ? d : join(dirname(file), d));
  return { file, resources, siteSteps: readStepDirs(file, dirs) };
}

function readStepDirs(file: string, dirs: string[]): Map<string, PilotStep> {
  const steps = new Map<string, PilotStep>();
  for (const dir of dirs) {
    let names: string[];
    try {
      if (!statSync(dir).isDirectory()) throw new Error("not a directory");
      names = readdirSync(dir).sort();
    } catch (cause) {
      throw new RmsConfigError(file, `Step directory "${dir}" cannot be read (${(cause as Error).message})`, {
        cause,
      });
    }
    for (const entry of names) {
      if (!entry.endsWith(".sh")) continue;
      const name = entry.slice(0, -3);
      if (!v.is(StepName, name)) {
        throw new RmsConfigError(
          file,
          `Site step "${join(dir, entry)}": "${name}" is not a step name (1-64 of a-z 0-9 _ -)`,
        );
      }
      if (steps.has(name)) continue;
      const path = join(dir, entry);
      steps.set(name, { name, run: readFileSync(path, "utf8"), source: path });
    }
  }
  return steps;
}

/** What {@linkcode resolvePilotFor} needs. */
export interface PilotFor {
  /** The plug-in (`slurm`). */
  rms: string;
  mode: PilotMode;
  /** A site resource of the plug-in (`gpu-partition`, or `slurm:gpu-partition`). */
  resource?: string;
  pilots?: PilotsFile;
  /** The plug-in config's own `pilot` section, applied last. */
  config?: PilotConfig;
}

/** A resolved step list and how it was found. */
export interface PilotResolution {
  /** The resource type asked for (`slurm:gpu-partition`, or just `slurm`). */
  resource: string;
  /** Entries looked up, most specific first (`slurm:gpu-partition`, `slurm`, `defaults`). */
  chain: string[];
  /** The entry whose list was taken, or `built-in` for the plug-in's own list. */
  base: string;
  /** Entries whose inserts were applied, in order, and `config` for the plug-in config's `pilot`. */
  layers: string[];
  steps: PilotStep[];
  /** The pilots file, when there is one. */
  file?: string;
}

/** The resource type `resource` names for plug-in `rms`: `gpu` and `slurm:gpu` are both `slurm:gpu`. */
export function resourceType(rms: string, resource?: string): string {
  if (!resource) return rms;
  const colon = resource.indexOf(":");
  const [plugin, name] = colon < 0 ? [rms, resource] : [resource.slice(0, colon), resource.slice(colon + 1)];
  if (plugin !== rms) {
    throw new RangeError(`Resource "${resource}" belongs to plug-in "${plugin}", not "${rms}"`);
  }
  const type = `${rms}:${name}`;
  if (!v.is(ResourceName, type)) {
    throw new RangeError(`Resource "${resource}" is not a resource name (letters, digits, . _ @ -)`);
  }
  return type;
}

/**
 * The pilot's steps for a resource: the first list along `resource → plug-in → defaults` (else the
 * plug-in's built-in list), the inserts of the more specific entries on top, then the plug-in config's
 * `pilot`. A foreground pilot (the RMS's job lives as long as it does) ends with `wait-agent`, added when
 * the list lacks it; a detached one (ssh) may not have it. Throws `RangeError` naming a bad step.
 */
export function resolvePilotFor(p: PilotFor): PilotResolution {
  const resource = resourceType(p.rms, p.resource);
  const chain = [...new Set([resource, p.rms, "defaults"])];
  const entries = p.pilots?.resources ?? {};
  const site = p.pilots?.siteSteps ?? new Map<string, PilotStep>();
  const lookup = (name: string) => site.get(name) ?? builtinStep(name);
  const known = [...new Set([...site.keys(), ...Object.keys(BUILTIN_STEPS)])];
  const at = chain.findIndex((name) => entries[name]?.steps);
  const base = at < 0 ? "built-in" : chain[at]!;
  // The plug-in's list, with built-ins that a site step of the same name replaces.
  let steps = defaultPilot(p.mode).map((s) => site.get(s.name) ?? s);
  const layers: string[] = [];
  const apply = (label: string, config: PilotConfig | undefined) => {
    if (!config?.steps && !config?.insert?.length) return;
    try {
      steps = resolvePilot(steps, config, { lookup, known });
    } catch (err) {
      const what = label === "config"
        ? "the plug-in config's pilot"
        : `${p.pilots?.file}: resource "${label}"`;
      throw new RangeError(`${what}: ${(err as Error).message}`, { cause: err });
    }
    layers.push(label);
  };
  // From the entry that gives the list up to the most specific one, whose inserts come last.
  for (let i = at < 0 ? chain.length - 1 : at; i >= 0; i--) {
    const name = chain[i]!;
    const entry = entries[name];
    apply(name, i === at ? entry : entry?.insert && { insert: entry.insert });
  }
  apply("config", p.config);
  const names = steps.map((s) => s.name);
  if (p.mode === "foreground" && !names.includes("wait-agent")) steps.push(builtinStep("wait-agent")!);
  if (p.mode === "detach" && names.includes("wait-agent")) {
    throw new RangeError(
      `The ${p.rms} plug-in detaches its agents, so its pilot cannot "wait-agent"; take it out of the list ` +
        `of resource "${base}"`,
    );
  }
  return {
    resource,
    chain,
    base,
    layers,
    steps,
    ...(p.pilots ? { file: p.pilots.file } : {}),
  };
}

/**
 * The steps of plug-in `rms`'s pilots for a submission: the pilots file of the request or else of the
 * config, the request's resource or else the plug-in's default one, the config's `pilot` on top.
 */
export function pilotStepsFor(
  rms: string,
  mode: PilotMode,
  request: { pilots?: string; resource?: string },
  config: { pilots?: string; pilot?: PilotConfig },
  defaultResource?: string,
): PilotResolution {
  const file = request.pilots ?? config.pilots;
  const resource = request.resource ?? defaultResource;
  return resolvePilotFor({
    rms,
    mode,
    ...(resource ? { resource } : {}),
    ...(file ? { pilots: loadPilotsFile(file) } : {}),
    ...(config.pilot ? { config: config.pilot } : {}),
  });
}

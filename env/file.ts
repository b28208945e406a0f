/**
 * Environment files: an unchanged DDS topology plus control — per task-path pattern a mode (`direct`,
 * `basic`, `hook`, `none`), criticality, hook triggers and timeouts, and per-event answer timeouts. JSON or
 * YAML; a bare DDS topology (XML or shoal's JSON form) is an environment whose tasks are all `none`.
 *
 * ```json
 * {
 *   "topology": "readout.xml",
 *   "vars": { "nReadout": "4" },
 *   "timeouts": { "default": 30, "CONFIGURE": 60 },
 *   "control": [
 *     { "tasks": "main/Readout_.*", "mode": "direct" },
 *     { "tasks": ".*Sampler.*", "mode": "basic", "critical": false },
 *     { "tasks": ".*check_disk.*", "mode": "hook", "trigger": "before_CONFIGURE-10", "timeout": 5 }
 *   ]
 * }
 * ```
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import * as v from "valibot";
import { parse as parseYaml } from "yaml";
import { EnvFileError } from "./errors.ts";
import { isEnvEvent } from "./fsm.ts";
import { parseTrigger } from "./hooks.ts";
import type { ControlMode, ControlRule, EnvControl, EnvTask } from "./types.ts";

/** Answer timeout of a direct task when the file gives none (ms). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Longest run of a hook when the file gives none (ms). */
export const DEFAULT_HOOK_TIMEOUT_MS = 30_000;

const Seconds = v.pipe(v.number(), v.minValue(0.001), v.maxValue(86_400));
const RuleSchema = v.strictObject({
  tasks: v.pipe(v.string(), v.minLength(1)),
  mode: v.picklist(["direct", "basic", "hook", "none"]),
  critical: v.optional(v.boolean()),
  trigger: v.optional(v.string()),
  timeout: v.optional(Seconds),
});
const EnvFileSchema = v.strictObject({
  topology: v.pipe(v.string(), v.minLength(1)),
  vars: v.optional(v.record(v.string(), v.string())),
  timeouts: v.optional(v.record(v.string(), Seconds)),
  control: v.optional(v.array(RuleSchema)),
});

/** An environment file, read. */
export interface EnvFile {
  /** The topology file (absolute), or the given file itself for a bare topology. */
  topologyFile: string;
  /** Variables for the topology (from the file; `--var` adds to them). */
  vars: Record<string, string>;
  control: EnvControl;
}

/** The environment file's object, or undefined when `text` is a bare topology (XML, or JSON without `topology`). */
function readObject(text: string, file: string): unknown {
  if (/^\s*</.test(text)) return undefined;
  let o: unknown;
  try {
    o = /^\s*\{/.test(text) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new EnvFileError(
      file,
      `Environment file "${file}" is neither JSON nor YAML: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (typeof o === "object" && o !== null && typeof (o as { topology?: unknown }).topology === "string") {
    return o;
  }
  if (/^\s*\{/.test(text)) return undefined; // shoal's JSON form of a topology
  throw new EnvFileError(file, `Environment file "${file}" names no topology (a "topology: FILE" field)`);
}

/** True when `text` is an environment file rather than a bare topology. */
export function isEnvFileText(text: string): boolean {
  try {
    return readObject(text, "") !== undefined;
  } catch {
    return false;
  }
}

/** Parses an environment file's text (`file` resolves its topology path and names it in errors). */
export function parseEnvFile(text: string, file: string): EnvFile {
  const object = readObject(text, file);
  if (object === undefined) {
    return { topologyFile: resolve(file), vars: {}, control: { rules: [], timeoutsMs: {} } };
  }
  const parsed = v.safeParse(EnvFileSchema, object);
  if (!parsed.success) {
    const issues = parsed.issues.map((i) => {
      const path = v.getDotPath(i);
      return `${path ? `at "${path}": ` : ""}${i.message}`;
    });
    throw new EnvFileError(file, `Environment file "${file}" is invalid: ${issues.join("; ")}`);
  }
  const out = parsed.output;
  const timeoutsMs: Record<string, number> = {};
  for (const [k, s] of Object.entries(out.timeouts ?? {})) {
    if (k !== "default" && !isEnvEvent(k)) {
      throw new EnvFileError(file, `Environment file "${file}": timeout for "${k}" names no event`);
    }
    timeoutsMs[k] = Math.round(s * 1000);
  }
  const rules: ControlRule[] = (out.control ?? []).map((r, i) => {
    try {
      new RegExp(`^(?:${r.tasks})$`);
    } catch (err) {
      throw new EnvFileError(
        file,
        `Environment file "${file}": control[${i}].tasks "${r.tasks}" is no regex`,
        {
          cause: err,
        },
      );
    }
    if (r.mode === "hook") {
      if (!r.trigger) {
        throw new EnvFileError(
          file,
          `Environment file "${file}": control[${i}] is a hook without a trigger (e.g. "before_CONFIGURE")`,
        );
      }
      try {
        parseTrigger(r.trigger);
      } catch (err) {
        throw new EnvFileError(file, `Environment file "${file}": control[${i}]: ${(err as Error).message}`);
      }
    } else if (r.trigger !== undefined) {
      throw new EnvFileError(file, `Environment file "${file}": control[${i}] has a trigger but is no hook`);
    }
    return {
      tasks: r.tasks,
      mode: r.mode,
      critical: r.critical ?? r.mode !== "none",
      ...(r.trigger ? { trigger: r.trigger } : {}),
      ...(r.mode === "hook"
        ? { timeoutMs: Math.round((r.timeout ?? DEFAULT_HOOK_TIMEOUT_MS / 1000) * 1000) }
        : {}),
    };
  });
  return {
    topologyFile: resolve(dirname(file), out.topology),
    vars: out.vars ?? {},
    control: { rules, timeoutsMs },
  };
}

/** The rule that applies to `path` (the first that matches), or undefined for `none`. */
export function ruleFor(control: EnvControl, path: string): ControlRule | undefined {
  return control.rules.find((r) => new RegExp(`^(?:${r.tasks})$`).test(path));
}

/** The mode of every path, with criticality; hooks are left out. */
export function classify(control: EnvControl, paths: Iterable<string>): {
  tasks: Record<string, EnvTask>;
  hooks: { path: string; rule: ControlRule }[];
} {
  const regexes = control.rules.map((r) => ({ r, re: new RegExp(`^(?:${r.tasks})$`) }));
  const tasks: Record<string, EnvTask> = {};
  const hooks: { path: string; rule: ControlRule }[] = [];
  for (const path of paths) {
    const rule = regexes.find((x) => x.re.test(path))?.r;
    const mode: ControlMode = rule?.mode ?? "none";
    if (mode === "hook") {
      hooks.push({ path, rule: rule! });
      continue;
    }
    tasks[path] = {
      mode,
      critical: rule?.critical ?? false,
      state: mode === "none" ? "INVARIANT" : "STANDBY",
    };
  }
  return { tasks, hooks };
}

/** The answer timeout of `event` (ms). */
export function timeoutFor(control: EnvControl, event: string): number {
  return control.timeoutsMs[event] ?? control.timeoutsMs.default ?? DEFAULT_TIMEOUT_MS;
}

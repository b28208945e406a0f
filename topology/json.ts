/**
 * The JSON form of the declared model, so tools can generate topologies without XML.
 *
 * @module
 */
import { TopologyValidationError } from "./errors.ts";
import type { Topology, TopologyIssue } from "./types.ts";
import { validateTopology } from "./validate.ts";

/** Marker of the JSON form. */
export const TOPOLOGY_JSON_FORMAT = "shoal.topology/1";

/** A topology in JSON form: the declared model plus a format marker. */
export type TopologyJson = Topology & { format: typeof TOPOLOGY_JSON_FORMAT };

/** Returns the JSON form of `topology` (a deep copy, safe to `JSON.stringify`). */
export function topologyToJson(topology: Topology): TopologyJson {
  return { format: TOPOLOGY_JSON_FORMAT, ...structuredClone(topology) };
}

const NAME_RE = /^[a-zA-Z0-9#@~_-]{1,128}$/;

/**
 * Reads a topology from its JSON form (or from the output of `shoal topology view --json`, which carries it
 * under `topology`), checking the same rules as the XML schema plus all references.
 *
 * @throws {TopologyValidationError} listing every problem, each named by its JSON path.
 */
export function topologyFromJson(
  value: unknown,
  options: { file?: string; maxTasks?: number } = {},
): Topology {
  const file = options.file ?? "<json>";
  const issues: TopologyIssue[] = [];
  const bad = (path: string, message: string, hint: string) =>
    issues.push({ file, line: 0, column: 0, name: path, message: `${path}: ${message}`, hint });
  const obj = (v: unknown, path: string): Record<string, unknown> => {
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    bad(path, "must be an object", "Give an object {…}.");
    return {};
  };
  const arr = (v: unknown, path: string): unknown[] => {
    if (v === undefined) return [];
    if (Array.isArray(v)) return v;
    bad(path, "must be an array", "Give an array […].");
    return [];
  };
  const str = (v: unknown, path: string, fallback = ""): string => {
    if (typeof v === "string") return v;
    if (v === undefined && fallback !== "\0") return fallback;
    bad(path, "must be a string", "Give a string.");
    return "";
  };
  const name = (v: unknown, path: string): string => {
    const s = str(v, path, "\0");
    if (typeof v === "string" && !NAME_RE.test(s)) {
      bad(
        path,
        `"${s}" is not a valid name`,
        "Names are 1 to 128 characters among letters, digits and # @ ~ _ -.",
      );
    }
    return s;
  };
  const oneOf = <T extends string>(v: unknown, path: string, allowed: readonly T[], fallback?: T): T => {
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    bad(path, `must be one of: ${allowed.join(", ")}`, "Use one of them.");
    return allowed[0] as T;
  };
  const size = (v: unknown, path: string): number => {
    if (v === undefined) return 1;
    if (typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 4294967295) return v;
    bad(path, "must be a whole number from 1 to 4294967295", "Use a count of 1 or more.");
    return 1;
  };
  const bool = (v: unknown, path: string): boolean => {
    if (v === undefined) return true;
    if (typeof v === "boolean") return v;
    bad(path, "must be true or false", "Use a boolean.");
    return true;
  };
  const names = (v: unknown, path: string) => arr(v, path).map((x, i) => name(x, `${path}[${i}]`));

  let root = obj(value, "$");
  if (root.topology !== undefined && root.tasks !== undefined) root = obj(root.topology, "$.topology");
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(root.vars ?? {}, "vars"))) vars[k] = str(v, `vars.${k}`, "\0");
  const mainIn = obj(root.main, "main");
  const topology: Topology = {
    name: name(root.name, "name"),
    vars,
    properties: arr(root.properties, "properties").map((x, i) => {
      const o = obj(x, `properties[${i}]`);
      return {
        name: name(o.name, `properties[${i}].name`),
        scope: oneOf(o.scope, `properties[${i}].scope`, ["global", "collection"] as const, "global"),
      };
    }),
    assets: arr(root.assets, "assets").map((x, i) => {
      const o = obj(x, `assets[${i}]`);
      return {
        name: name(o.name, `assets[${i}].name`),
        type: oneOf(o.type, `assets[${i}].type`, ["inline"] as const, "inline"),
        visibility: oneOf(o.visibility, `assets[${i}].visibility`, ["task", "global"] as const),
        value: str(o.value, `assets[${i}].value`, "\0"),
      };
    }),
    requirements: arr(root.requirements, "requirements").map((x, i) => {
      const o = obj(x, `requirements[${i}]`);
      return {
        name: name(o.name, `requirements[${i}].name`),
        type: oneOf(
          o.type,
          `requirements[${i}].type`,
          [
            "hostname",
            "wnname",
            "groupname",
            "maxinstances",
            "gpu",
            "custom",
          ] as const,
        ),
        value: str(o.value, `requirements[${i}].value`, "\0"),
      };
    }),
    triggers: arr(root.triggers, "triggers").map((x, i) => {
      const o = obj(x, `triggers[${i}]`);
      return {
        name: name(o.name, `triggers[${i}].name`),
        condition: oneOf(o.condition, `triggers[${i}].condition`, ["TaskCrashed"] as const),
        action: oneOf(o.action, `triggers[${i}].action`, ["RestartTask"] as const),
        arg: str(o.arg, `triggers[${i}].arg`, "\0"),
      };
    }),
    tasks: arr(root.tasks, "tasks").map((x, i) => {
      const o = obj(x, `tasks[${i}]`);
      const p = `tasks[${i}]`;
      const exe = str(o.exe, `${p}.exe`, "\0");
      if (exe === "") bad(`${p}.exe`, "must not be empty", "Give the command line to run.");
      return {
        name: name(o.name, `${p}.name`),
        exe,
        exeReachable: bool(o.exeReachable, `${p}.exeReachable`),
        env: str(o.env, `${p}.env`),
        envReachable: bool(o.envReachable, `${p}.envReachable`),
        requirements: names(o.requirements, `${p}.requirements`),
        properties: arr(o.properties, `${p}.properties`).map((y, j) => {
          const q = obj(y, `${p}.properties[${j}]`);
          return {
            name: name(q.name, `${p}.properties[${j}].name`),
            access: oneOf(q.access, `${p}.properties[${j}].access`, ["read", "write", "readwrite"] as const),
          };
        }),
        triggers: names(o.triggers, `${p}.triggers`),
        assets: names(o.assets, `${p}.assets`),
      };
    }),
    collections: arr(root.collections, "collections").map((x, i) => {
      const o = obj(x, `collections[${i}]`);
      const p = `collections[${i}]`;
      const tasks = arr(o.tasks, `${p}.tasks`).map((y, j) => {
        const q = obj(y, `${p}.tasks[${j}]`);
        return { name: name(q.name, `${p}.tasks[${j}].name`), n: size(q.n, `${p}.tasks[${j}].n`) };
      });
      if (tasks.length === 0) bad(`${p}.tasks`, "needs at least one task", "List the collection's tasks.");
      return {
        name: name(o.name, `${p}.name`),
        requirements: names(o.requirements, `${p}.requirements`),
        tasks,
      };
    }),
    main: {
      name: str(mainIn.name, "main.name", "main"),
      tasks: names(mainIn.tasks, "main.tasks"),
      collections: names(mainIn.collections, "main.collections"),
      groups: arr(mainIn.groups, "main.groups").map((x, i) => {
        const o = obj(x, `main.groups[${i}]`);
        const p = `main.groups[${i}]`;
        if (o.groups !== undefined) {
          bad(`${p}.groups`, "groups cannot be nested", "Move the inner group to main.");
        }
        return {
          name: name(o.name, `${p}.name`),
          n: size(o.n, `${p}.n`),
          tasks: names(o.tasks, `${p}.tasks`),
          collections: names(o.collections, `${p}.collections`),
        };
      }),
    },
  };
  if (topology.tasks.length === 0) bad("tasks", "needs at least one task", "Declare a task.");
  issues.push(...validateTopology(topology, { file, maxTasks: options.maxTasks }));
  if (issues.length) throw new TopologyValidationError(issues);
  return topology;
}

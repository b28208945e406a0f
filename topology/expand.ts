/**
 * Expansion of a declared topology into DDS's runtime tasks and collections.
 *
 * @module
 */
import { Crc64Suffix } from "./_crc64.ts";
import { TopologyValidationError } from "./errors.ts";
import type {
  AssetDecl,
  CollectionDecl,
  ExpandedTopology,
  RequirementDecl,
  RuntimeCollection,
  RuntimeProperty,
  RuntimeTask,
  TaskDecl,
  Topology,
  TriggerDecl,
} from "./types.ts";
import { type ValidateOptions, validateTopology } from "./validate.ts";

interface TaskTemplate {
  decl: TaskDecl;
  requirements: RequirementDecl[];
  properties: RuntimeProperty[];
  triggers: TriggerDecl[];
  assets: AssetDecl[];
  crc: Crc64Suffix;
  hashString: string;
  /** The exe split around `%taskIndex%`/`%collectionIndex%` (odd entries), or `null` without placeholders. */
  exeParts: string[] | null;
}

interface CollectionTemplate {
  decl: CollectionDecl;
  requirements: RequirementDecl[];
  /** One entry per runtime task of an instance: template and the `/<name>_<i>` path suffix. */
  entries: { tpl: TaskTemplate; index: number; suffix: string }[];
  crc: Crc64Suffix;
}

const encoder = new TextEncoder();
const PLACEHOLDER_RE = /%(taskIndex|collectionIndex)%/;
const PLACEHOLDER_SPLIT = /(%taskIndex%|%collectionIndex%)/;

/**
 * Expands `topology` exactly as DDS's `CTopoCore` does: main's tasks, then its collections, then each group
 * `n` times; an element's path is `<parent path>/<name>_<i>` where `i` counts instances of that path. IDs are
 * CRC-64 of the runtime path followed by the element's definition string, so a changed definition gets a new ID.
 *
 * @throws {TopologyValidationError} when the topology does not validate (see {@linkcode validateTopology}).
 * @example
 * ```ts
 * const { tasks } = expandTopology(parseTopology(xml));
 * console.log(tasks[0]?.path); // "main/task1_0"
 * ```
 */
export function expandTopology(topology: Topology, options: ValidateOptions = {}): ExpandedTopology {
  const issues = validateTopology(topology, options);
  if (issues.length) throw new TopologyValidationError(issues);

  const lookup = <T extends { name: string }>(items: T[]) => new Map(items.map((i) => [i.name, i] as const));
  const reqs = lookup(topology.requirements);
  const props = lookup(topology.properties);
  const trigs = lookup(topology.triggers);
  const assets = lookup(topology.assets);
  const pick = <T>(map: Map<string, T>, names: string[]) => names.map((n) => map.get(n) as T);

  const taskTpl = new Map<string, TaskTemplate>();
  for (const decl of topology.tasks) {
    if (taskTpl.has(decl.name)) continue;
    // DDS keeps a task's properties in a std::map: sorted by name, the first declaration of a name wins.
    const seen = new Map<string, RuntimeProperty>();
    for (const p of decl.properties) {
      if (!seen.has(p.name)) {
        seen.set(p.name, { name: p.name, access: p.access, scope: props.get(p.name)?.scope ?? "global" });
      }
    }
    const tpl = {
      decl,
      requirements: pick(reqs, decl.requirements),
      properties: [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      triggers: pick(trigs, decl.triggers),
      assets: pick(assets, decl.assets),
      crc: undefined as unknown as Crc64Suffix,
      hashString: "",
      exeParts: PLACEHOLDER_RE.test(decl.exe) ? decl.exe.split(PLACEHOLDER_SPLIT) : null,
    };
    tpl.hashString = taskHashString(tpl);
    tpl.crc = new Crc64Suffix(encoder.encode(tpl.hashString));
    taskTpl.set(decl.name, tpl);
  }
  const collTpl = new Map<string, CollectionTemplate>();
  for (const decl of topology.collections) {
    if (collTpl.has(decl.name)) continue;
    const counters = new Map<string, number>();
    const entries: CollectionTemplate["entries"] = [];
    const requirements = pick(reqs, decl.requirements);
    let hashString = `|Collection|${decl.name}|` + requirements.map((r) => requirementHash(r) + "|").join("");
    for (const ref of decl.tasks) {
      const tpl = taskTpl.get(ref.name) as TaskTemplate;
      for (let k = 0; k < ref.n; k++) {
        const index = counters.get(ref.name) ?? 0;
        counters.set(ref.name, index + 1);
        entries.push({ tpl, index, suffix: `/${ref.name}_${index}` });
        hashString += tpl.hashString + "|";
      }
    }
    collTpl.set(decl.name, { decl, requirements, entries, crc: new Crc64Suffix(encoder.encode(hashString)) });
  }

  const tasks: RuntimeTask[] = [];
  const collections: RuntimeCollection[] = [];
  const ids = new Set<string>();
  const unique = (id: string, path: string) => {
    if (ids.has(id)) {
      throw new TopologyValidationError([{
        file: options.file ?? "<topology>",
        line: 0,
        column: 0,
        name: path,
        message: `Two runtime elements get the same ID; the second is "${path}"`,
        hint: "Rename a task, collection or group in this path.",
      }]);
    }
    ids.add(id);
  };
  const makeTask = (
    tpl: TaskTemplate,
    path: string,
    index: number,
    groupName: string,
    coll: RuntimeCollection | null,
  ): RuntimeTask => {
    const id = tpl.crc.decimalWithPrefix(path);
    unique(id, path);
    const d = tpl.decl;
    let exe = d.exe;
    const parts = tpl.exeParts;
    if (parts) {
      // Concatenation keeps the common text shared (a rope) instead of copying the whole line per task.
      exe = parts[0] as string;
      for (let i = 1; i < parts.length; i += 2) {
        const p = parts[i];
        exe += (p === "%taskIndex%" ? String(index) : coll ? String(coll.index) : p) +
          (parts[i + 1] as string);
      }
    }
    const task: RuntimeTask = {
      path,
      id,
      name: d.name,
      index,
      collectionIndex: coll ? coll.index : null,
      collectionPath: coll ? coll.path : null,
      collectionName: coll ? coll.name : null,
      groupName,
      exe,
      exeReachable: d.exeReachable,
      env: d.env,
      envReachable: d.envReachable,
      requirements: tpl.requirements,
      properties: tpl.properties,
      triggers: tpl.triggers,
      assets: tpl.assets,
    };
    tasks.push(task);
    return task;
  };

  const expandContainer = (
    base: string,
    groupName: string,
    n: number,
    taskNames: string[],
    collNames: string[],
  ) => {
    if (taskNames.length === 0 && collNames.length === 0) return;
    const taskCounters = new Map<string, number>();
    const collCounters = new Map<string, number>();
    for (let g = 0; g < n; g++) {
      for (const name of taskNames) {
        const index = taskCounters.get(name) ?? 0;
        taskCounters.set(name, index + 1);
        makeTask(taskTpl.get(name) as TaskTemplate, `${base}/${name}_${index}`, index, groupName, null);
      }
      for (const name of collNames) {
        const tpl = collTpl.get(name) as CollectionTemplate;
        const index = collCounters.get(name) ?? 0;
        collCounters.set(name, index + 1);
        const path = `${base}/${name}_${index}`;
        const id = tpl.crc.decimalWithPrefix(path);
        unique(id, path);
        const coll: RuntimeCollection = {
          path,
          id,
          name,
          index,
          groupName,
          requirements: tpl.requirements,
          tasks: new Array<RuntimeTask>(tpl.entries.length),
        };
        collections.push(coll);
        for (let k = 0; k < tpl.entries.length; k++) {
          const e = tpl.entries[k] as CollectionTemplate["entries"][number];
          coll.tasks[k] = makeTask(e.tpl, path + e.suffix, e.index, groupName, coll);
        }
      }
    }
  };

  const main = topology.main;
  expandContainer("main", "main", 1, main.tasks, main.collections);
  for (const g of main.groups) expandContainer(`main/${g.name}`, g.name, g.n, g.tasks, g.collections);
  return { name: topology.name, topology, tasks, collections };
}

function requirementHash(r: RequirementDecl): string {
  return `|Requirement|${r.name}|${r.type}|${r.value}|`;
}

function taskHashString(t: Omit<TaskTemplate, "crc" | "hashString">): string {
  const d = t.decl;
  let s = `|Task|${d.name}|${d.exe}|${d.env}|${d.exeReachable ? 1 : 0}|${d.envReachable ? 1 : 0}`;
  for (const p of t.properties) s += `|Property|${p.name}|${p.access}|${p.scope}||`;
  for (const r of t.requirements) s += requirementHash(r) + "|";
  for (const g of t.triggers) s += `|Trigger|${g.name}|${g.action}|${g.condition}|${g.arg}||`;
  for (const a of t.assets) s += `|Asset|${a.name}|${a.type}|${a.visibility}|${a.value}||`;
  return s;
}

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
  GroupDecl,
  PropertyDecl,
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
  const taskTpl = taskTemplates(topology);
  const expansion = new Expansion(
    taskTpl,
    collectionTemplates(topology, taskTpl),
    options.file ?? "<topology>",
  );
  const main = topology.main;
  expansion.container("main", { name: "main", n: 1, tasks: main.tasks, collections: main.collections });
  for (const g of main.groups) expansion.container(`main/${g.name}`, g);
  return { name: topology.name, topology, tasks: expansion.tasks, collections: expansion.collections };
}

function byName<T extends { name: string }>(items: T[]): Map<string, T> {
  return new Map(items.map((i) => [i.name, i] as const));
}

/** The named entries of `map`, which validation has already checked exist. */
function pick<T>(map: Map<string, T>, names: string[]): T[] {
  return names.map((n) => map.get(n) as T);
}

/** One template per declared task: everything its runtime tasks share, hashed once. */
function taskTemplates(topology: Topology): Map<string, TaskTemplate> {
  const reqs = byName(topology.requirements);
  const props = byName(topology.properties);
  const trigs = byName(topology.triggers);
  const assets = byName(topology.assets);
  const out = new Map<string, TaskTemplate>();
  for (const decl of topology.tasks) {
    if (out.has(decl.name)) continue;
    const base = {
      decl,
      requirements: pick(reqs, decl.requirements),
      properties: taskProperties(decl, props),
      triggers: pick(trigs, decl.triggers),
      assets: pick(assets, decl.assets),
      exeParts: PLACEHOLDER_RE.test(decl.exe) ? decl.exe.split(PLACEHOLDER_SPLIT) : null,
    };
    const hashString = taskHashString(base);
    out.set(decl.name, { ...base, hashString, crc: new Crc64Suffix(encoder.encode(hashString)) });
  }
  return out;
}

/** DDS keeps a task's properties in a std::map: sorted by name, the first declaration of a name wins. */
function taskProperties(decl: TaskDecl, props: Map<string, PropertyDecl>): RuntimeProperty[] {
  const seen = new Map<string, RuntimeProperty>();
  for (const p of decl.properties) {
    if (!seen.has(p.name)) {
      seen.set(p.name, { name: p.name, access: p.access, scope: props.get(p.name)?.scope ?? "global" });
    }
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** One template per declared collection: its tasks' path suffixes and its hash, computed once. */
function collectionTemplates(
  topology: Topology,
  taskTpl: Map<string, TaskTemplate>,
): Map<string, CollectionTemplate> {
  const reqs = byName(topology.requirements);
  const out = new Map<string, CollectionTemplate>();
  for (const decl of topology.collections) {
    if (out.has(decl.name)) continue;
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
    out.set(decl.name, { decl, requirements, entries, crc: new Crc64Suffix(encoder.encode(hashString)) });
  }
  return out;
}

/** The runtime tasks and collections of one expansion, filled container by container. */
class Expansion {
  readonly tasks: RuntimeTask[] = [];
  readonly collections: RuntimeCollection[] = [];
  #ids = new Set<string>();
  #taskTpl: Map<string, TaskTemplate>;
  #collTpl: Map<string, CollectionTemplate>;
  #file: string;

  constructor(taskTpl: Map<string, TaskTemplate>, collTpl: Map<string, CollectionTemplate>, file: string) {
    this.#taskTpl = taskTpl;
    this.#collTpl = collTpl;
    this.#file = file;
  }

  /** `group.n` instances of the group's tasks and collections under `base` (main is a group of one). */
  container(base: string, group: GroupDecl): void {
    const { name: groupName, n, tasks: taskNames, collections: collNames } = group;
    if (taskNames.length === 0 && collNames.length === 0) return;
    const taskCounters = new Map<string, number>();
    const collCounters = new Map<string, number>();
    for (let g = 0; g < n; g++) {
      for (const name of taskNames) {
        const index = taskCounters.get(name) ?? 0;
        taskCounters.set(name, index + 1);
        this.#task(
          this.#taskTpl.get(name) as TaskTemplate,
          `${base}/${name}_${index}`,
          index,
          groupName,
          null,
        );
      }
      for (const name of collNames) {
        const index = collCounters.get(name) ?? 0;
        collCounters.set(name, index + 1);
        this.#collection(
          this.#collTpl.get(name) as CollectionTemplate,
          `${base}/${name}_${index}`,
          index,
          groupName,
        );
      }
    }
  }

  #collection(tpl: CollectionTemplate, path: string, index: number, groupName: string): void {
    const id = tpl.crc.decimalWithPrefix(path);
    this.#unique(id, path);
    const coll: RuntimeCollection = {
      path,
      id,
      name: tpl.decl.name,
      index,
      groupName,
      requirements: tpl.requirements,
      tasks: new Array<RuntimeTask>(tpl.entries.length),
    };
    this.collections.push(coll);
    for (let k = 0; k < tpl.entries.length; k++) {
      const e = tpl.entries[k] as CollectionTemplate["entries"][number];
      coll.tasks[k] = this.#task(e.tpl, path + e.suffix, e.index, groupName, coll);
    }
  }

  // Positional on purpose: this runs once per runtime task, and an options object would be one more allocation.
  #task(
    tpl: TaskTemplate,
    path: string,
    index: number,
    groupName: string,
    coll: RuntimeCollection | null,
  ): RuntimeTask {
    const id = tpl.crc.decimalWithPrefix(path);
    this.#unique(id, path);
    const d = tpl.decl;
    const task: RuntimeTask = {
      path,
      id,
      name: d.name,
      index,
      collectionIndex: coll ? coll.index : null,
      collectionPath: coll ? coll.path : null,
      collectionName: coll ? coll.name : null,
      groupName,
      exe: tpl.exeParts ? substituteExe(tpl.exeParts, index, coll) : d.exe,
      exeReachable: d.exeReachable,
      env: d.env,
      envReachable: d.envReachable,
      requirements: tpl.requirements,
      properties: tpl.properties,
      triggers: tpl.triggers,
      assets: tpl.assets,
    };
    this.tasks.push(task);
    return task;
  }

  #unique(id: string, path: string): void {
    if (this.#ids.has(id)) {
      throw new TopologyValidationError([{
        file: this.#file,
        line: 0,
        column: 0,
        name: path,
        message: `Two runtime elements get the same ID; the second is "${path}"`,
        hint: "Rename a task, collection or group in this path.",
      }]);
    }
    this.#ids.add(id);
  }
}

/** The exe with its placeholders (odd entries of `parts`) filled in; outside a collection `%collectionIndex%` stays. */
function substituteExe(parts: string[], index: number, coll: RuntimeCollection | null): string {
  // Concatenation keeps the common text shared (a rope) instead of copying the whole line per task.
  let exe = parts[0] as string;
  for (let i = 1; i < parts.length; i += 2) {
    const p = parts[i];
    exe += (p === "%taskIndex%" ? String(index) : coll ? String(coll.index) : p) + (parts[i + 1] as string);
  }
  return exe;
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

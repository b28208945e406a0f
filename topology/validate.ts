/**
 * Semantic checks DDS only makes at run time (or never): every reference resolves, names are unique,
 * requirement values make sense, and the expansion stays within a bound.
 *
 * @module
 */
import type { PositionIndex } from "./_build.ts";
import { clip } from "./_schema.ts";
import type { Topology, TopologyIssue } from "./types.ts";

/** Options of {@linkcode validateTopology}. */
export interface ValidateOptions {
  /** File name used in issues. */
  file?: string;
  /** Source positions, when the model came from XML. */
  positions?: PositionIndex;
  /** Refuse topologies expanding to more runtime tasks than this. Default 2,000,000. */
  maxTasks?: number;
}

/** Default bound on the number of runtime tasks a topology may expand to. */
export const DEFAULT_MAX_TASKS = 2_000_000;

/**
 * Returns every semantic problem of `topology` (an empty array when it is sound).
 *
 * @example
 * ```ts
 * const issues = validateTopology(topology, { file: "topo.xml" });
 * if (issues.length) throw new TopologyValidationError(issues);
 * ```
 */
export function validateTopology(topology: Topology, options: ValidateOptions = {}): TopologyIssue[] {
  const file = options.file ?? "<topology>";
  const pos = options.positions;
  const issues: TopologyIssue[] = [];
  const push = (
    owner: object,
    field: string | undefined,
    index: number,
    name: string,
    message: string,
    hint: string,
  ) => {
    const p = pos?.of(owner, field, index) ?? pos?.of(owner);
    issues.push({ file, line: p?.line ?? 0, column: p?.column ?? 0, name, message, hint });
  };

  const index = <T extends { name: string }>(kind: string, items: T[]): Map<string, T> => {
    const map = new Map<string, T>();
    for (const item of items) {
      const first = map.get(item.name);
      if (first) {
        const p = pos?.of(first);
        push(
          item,
          undefined,
          0,
          item.name,
          `${kind} "${item.name}" is declared more than once${p ? ` (first at line ${p.line})` : ""}`,
          "Rename or remove one of the declarations.",
        );
      } else map.set(item.name, item);
    }
    return map;
  };
  const properties = index("Property", topology.properties);
  const assets = index("Asset", topology.assets);
  const requirements = index("Requirement", topology.requirements);
  const triggers = index("Trigger", topology.triggers);
  const tasks = index("Task", topology.tasks);
  const collections = index("Collection", topology.collections);
  index("Group", topology.main.groups);

  const resolve = (
    owner: object,
    field: string,
    refs: readonly string[],
    known: Map<string, unknown>,
    kind: string,
    decl: string,
    user: string,
  ) => {
    refs.forEach((name, i) => {
      if (known.has(name) || name === "") return;
      push(
        owner,
        field,
        i,
        name,
        `${kind} "${clip(name)}" used by ${user} is not declared`,
        `Declare it with <${decl} name="${clip(name)}" …/>, or fix the spelling.`,
      );
    });
  };

  for (const r of topology.requirements) {
    checkRequirementValue(r, (m, h) => push(r, undefined, 0, r.value, m, h));
  }
  for (const t of topology.tasks) {
    const who = `task "${t.name}"`;
    resolve(t, "requirements", t.requirements, requirements, "Requirement", "declrequirement", who);
    resolve(t, "properties", t.properties.map((p) => p.name), properties, "Property", "property", who);
    resolve(t, "triggers", t.triggers, triggers, "Trigger", "decltrigger", who);
    resolve(t, "assets", t.assets, assets, "Asset", "asset", who);
  }
  for (const c of topology.collections) {
    const who = `collection "${c.name}"`;
    resolve(c, "requirements", c.requirements, requirements, "Requirement", "declrequirement", who);
    resolve(c, "tasks", c.tasks.map((t) => t.name), tasks, "Task", "decltask", who);
  }
  const main = topology.main;
  resolve(main, "tasks", main.tasks, tasks, "Task", "decltask", "main");
  resolve(main, "collections", main.collections, collections, "Collection", "declcollection", "main");
  for (const g of main.groups) {
    resolve(g, "tasks", g.tasks, tasks, "Task", "decltask", `group "${g.name}"`);
    resolve(
      g,
      "collections",
      g.collections,
      collections,
      "Collection",
      "declcollection",
      `group "${g.name}"`,
    );
  }

  const maxTasks = options.maxTasks ?? DEFAULT_MAX_TASKS;
  const total = countTasks(topology);
  if (total > maxTasks) {
    push(
      main,
      undefined,
      0,
      String(total),
      `The topology expands to ${total} tasks, more than the limit of ${maxTasks}`,
      "Lower the n of groups or collections, or raise the limit if this is intended.",
    );
  }
  return issues;
}

/** Number of runtime tasks `topology` expands to (unknown references count as zero). */
export function countTasks(topology: Topology): number {
  const collSize = new Map<string, number>();
  for (const c of topology.collections) {
    if (!collSize.has(c.name)) collSize.set(c.name, c.tasks.reduce((s, t) => s + t.n, 0));
  }
  const size = (tasks: string[], colls: string[]) =>
    colls.reduce((s, name) => s + (collSize.get(name) ?? 0), tasks.length);
  let total = size(topology.main.tasks, topology.main.collections);
  for (const g of topology.main.groups) total += g.n * size(g.tasks, g.collections);
  return total;
}

function checkRequirementValue(
  r: { name: string; type: string; value: string },
  report: (message: string, hint: string) => void,
): void {
  const what = `Requirement "${r.name}" (${r.type})`;
  switch (r.type) {
    case "hostname":
    case "wnname":
    case "groupname":
      try {
        new RegExp(r.value);
      } catch {
        report(
          `${what} has an invalid regular expression "${clip(r.value)}"`,
          "Fix the pattern (ECMAScript syntax).",
        );
      }
      return;
    case "maxinstances":
    case "gpu":
      if (!/^[0-9]+$/.test(r.value) || Number(r.value) < 1) {
        report(`${what} needs a whole number of 1 or more, not "${clip(r.value)}"`, 'Use e.g. value="2".');
      }
      return;
    case "custom":
      if (!/^[^=\s]+(=.*)?$/.test(r.value)) {
        report(
          `${what} needs "label" or "label=regex", not "${clip(r.value)}"`,
          'Use e.g. value="zone=eu-.*".',
        );
      }
      return;
  }
}

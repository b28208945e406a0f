/**
 * Outputs of `shoal topology validate|view|diff`, as plain functions so the CLI stays a thin wrapper.
 *
 * @module
 */
import { TopologyFileError, TopologyValidationError } from "./errors.ts";
import { type TopologyJson, topologyToJson } from "./json.ts";
import { loadTopology } from "./load.ts";
import type { ParseOptions } from "./parse.ts";
import type { ExpandedTopology, Topology, TopologyDiff, TopologyIssue } from "./types.ts";
import { countTasks } from "./validate.ts";

/** One runtime task in `view --json`. */
export interface ViewTaskJson {
  path: string;
  id: string;
  name: string;
  index: number;
  collectionIndex: number | null;
  collectionPath: string | null;
  groupName: string;
  exe: string;
}

/** One runtime collection in `view --json`. */
export interface ViewCollectionJson {
  path: string;
  id: string;
  name: string;
  index: number;
  groupName: string;
  tasks: string[];
}

/** Output of `shoal topology view --json`; `topology` is the declared model, readable by `topologyFromJson`. */
export interface ViewJson {
  name: string;
  tasks: ViewTaskJson[];
  collections: ViewCollectionJson[];
  topology: TopologyJson;
}

/** Builds the `view --json` object. */
export function viewJson(expanded: ExpandedTopology): ViewJson {
  return {
    name: expanded.name,
    tasks: expanded.tasks.map((t) => ({
      path: t.path,
      id: t.id,
      name: t.name,
      index: t.index,
      collectionIndex: t.collectionIndex,
      collectionPath: t.collectionPath,
      groupName: t.groupName,
      exe: t.exe,
    })),
    collections: expanded.collections.map((c) => ({
      path: c.path,
      id: c.id,
      name: c.name,
      index: c.index,
      groupName: c.groupName,
      tasks: c.tasks.map((t) => t.path),
    })),
    topology: topologyToJson(expanded.topology),
  };
}

/**
 * A tree for people: main, its groups and collections with their multiplicities and first runtime paths.
 */
export function formatTree(topology: Topology): string {
  const sizes = new Map(topology.collections.map((c) => [c.name, c]));
  const counted = (names: string[], n: number) => {
    const m = new Map<string, number>();
    for (const x of names) m.set(x, (m.get(x) ?? 0) + n);
    return m;
  };
  const items = (base: string, n: number, tasks: string[], colls: string[]): TreeNode[] => [
    ...[...counted(tasks, n)].map(([name, k]) => ({
      text: `task ${name} ×${k}  ${range(`${base}/${name}`, k)}`,
    })),
    ...[...counted(colls, n)].map(([name, k]) => ({
      text: `collection ${name} ×${k}  ${range(`${base}/${name}`, k)}`,
      children: (sizes.get(name)?.tasks ?? []).map((t) => ({ text: `task ${t.name} ×${t.n}` })),
    })),
  ];
  const main = topology.main;
  const root: TreeNode = {
    text: "main",
    children: [
      ...items("main", 1, main.tasks, main.collections),
      ...main.groups.map((g) => ({
        text: `group ${g.name} (n=${g.n})`,
        children: items(`main/${g.name}`, g.n, g.tasks, g.collections),
      })),
    ],
  };
  return [`${topology.name} (${countTasks(topology)} tasks)`, ...renderTree(root, "", "")].join("\n");
}

interface TreeNode {
  text: string;
  children?: TreeNode[];
}

function renderTree(node: TreeNode, head: string, indent: string): string[] {
  const lines = [`${head}${node.text}`];
  const kids = node.children ?? [];
  kids.forEach((kid, i) => {
    const last = i === kids.length - 1;
    lines.push(...renderTree(kid, `${indent}${last ? "└─ " : "├─ "}`, `${indent}${last ? "   " : "│  "}`));
  });
  return lines;
}

function range(base: string, k: number): string {
  return k === 1 ? `${base}_0` : `${base}_0 … ${base}_${k - 1}`;
}

/** The `diff --json` object (a copy of `diff` with its four lists). */
export function diffJson(diff: TopologyDiff): TopologyDiff {
  return {
    removedTasks: [...diff.removedTasks],
    addedTasks: [...diff.addedTasks],
    removedCollections: [...diff.removedCollections],
    addedCollections: [...diff.addedCollections],
  };
}

/** A human summary of a diff in DDS's style: `3 x main/group1/collection1/task1` per section. */
export function formatDiff(diff: TopologyDiff): string {
  const section = (title: string, paths: string[]) => {
    if (paths.length === 0) return [];
    const counts = new Map<string, number>();
    for (const p of paths) {
      const key = p.replace(/_\d+(?=\/|$)/g, "");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [`${title} (${paths.length}):`, ...[...counts].map(([k, n]) => `  ${n} x ${k}`)];
  };
  const lines = [
    ...section("Removed tasks", diff.removedTasks),
    ...section("Added tasks", diff.addedTasks),
    ...section("Removed collections", diff.removedCollections),
    ...section("Added collections", diff.addedCollections),
  ];
  return lines.length ? lines.join("\n") : "No changes";
}

/** Formats issues as `file:line:column: message [name]` followed by an indented hint, one per issue. */
export function formatIssues(issues: readonly TopologyIssue[]): string {
  return issues.map((i) => {
    const where = i.line > 0 ? `${i.file}:${i.line}:${i.column}` : i.file;
    return `${where}: ${i.message}\n  hint: ${i.hint}`;
  }).join("\n");
}

/** Result of {@linkcode validateFiles}. */
export interface ValidateFilesResult {
  /** True when every file is valid: exit code 0. */
  ok: boolean;
  /** Every issue of every file, unreadable files included. */
  issues: TopologyIssue[];
  /** What `shoal topology validate` prints. */
  text: string;
}

/** Validates every file of `paths` (parse, schema, references) and collects all issues. */
export async function validateFiles(
  paths: readonly string[],
  options: Omit<ParseOptions, "file"> = {},
): Promise<ValidateFilesResult> {
  const issues: TopologyIssue[] = [];
  const lines: string[] = [];
  for (const path of paths) {
    try {
      const topo = await loadTopology(path, options);
      lines.push(`${path}: valid, ${countTasks(topo)} tasks`);
    } catch (err) {
      if (err instanceof TopologyValidationError) {
        issues.push(...err.issues);
        lines.push(formatIssues(err.issues));
      } else if (err instanceof TopologyFileError) {
        const issue = {
          file: path,
          line: 0,
          column: 0,
          name: path,
          message: err.message,
          hint: "Check the path.",
        };
        issues.push(issue);
        lines.push(formatIssues([issue]));
      } else throw err;
    }
  }
  return { ok: issues.length === 0, issues, text: lines.join("\n") };
}

// Turns the (variable-substituted) element tree into the declared model, remembering where each declaration
// and each reference came from so that semantic errors can point at the exact line.
import type { XmlNode } from "./_xml.ts";
import type {
  AssetDecl,
  CollectionDecl,
  GroupDecl,
  MainDecl,
  PropertyAccess,
  PropertyDecl,
  RequirementDecl,
  RequirementType,
  SourcePosition,
  TaskDecl,
  Topology,
  TriggerDecl,
} from "./types.ts";

/** Where declarations and references sit in the source; `undefined` for JSON input. */
export interface PositionIndex {
  of(owner: object, field?: string, index?: number): SourcePosition | undefined;
}

/** Builds the declared model from a tree that passed (or mostly passed) the schema check. */
export function buildTopology(
  root: XmlNode,
  vars: Map<string, string>,
): { topology: Topology; positions: PositionIndex } {
  const decls = new WeakMap<object, SourcePosition>();
  const refs = new WeakMap<object, Record<string, SourcePosition[]>>();
  const at = <T extends object>(obj: T, node: XmlNode): T => {
    decls.set(obj, { line: node.line, column: node.column });
    return obj;
  };
  const ref = (owner: object, field: string, node: XmlNode) => {
    let r = refs.get(owner);
    if (!r) refs.set(owner, r = {});
    (r[field] ??= []).push({ line: node.line, column: node.column });
  };
  const names = (owner: object, field: string, node: XmlNode | undefined): string[] => {
    const out: string[] = [];
    for (const c of node?.children ?? []) {
      out.push(c.text);
      ref(owner, field, c);
    }
    return out;
  };

  const topology: Topology = {
    name: root.attrs.name ?? "",
    vars: Object.fromEntries(vars),
    properties: [],
    assets: [],
    requirements: [],
    triggers: [],
    tasks: [],
    collections: [],
    main: { name: "main", tasks: [], collections: [], groups: [] },
  };
  for (const node of root.children) {
    const a = node.attrs;
    switch (node.tag) {
      case "property":
        topology.properties.push(at<PropertyDecl>({
          name: a.name ?? "",
          scope: a.scope === "collection" ? "collection" : "global",
        }, node));
        break;
      case "asset":
        topology.assets.push(at<AssetDecl>({
          name: a.name ?? "",
          type: "inline",
          visibility: a.visibility === "global" ? "global" : "task",
          value: a.value ?? "",
        }, node));
        break;
      case "declrequirement":
        topology.requirements.push(at<RequirementDecl>({
          name: a.name ?? "",
          type: (a.type ?? "hostname") as RequirementType,
          value: a.value ?? "",
        }, node));
        break;
      case "decltrigger":
        topology.triggers.push(at<TriggerDecl>({
          name: a.name ?? "",
          condition: "TaskCrashed",
          action: "RestartTask",
          arg: a.arg ?? "",
        }, node));
        break;
      case "decltask":
        topology.tasks.push(buildTask(node, at, ref, names));
        break;
      case "declcollection": {
        const c = at<CollectionDecl>({ name: a.name ?? "", requirements: [], tasks: [] }, node);
        c.requirements = names(c, "requirements", child(node, "requirements"));
        for (const t of child(node, "tasks")?.children ?? []) {
          c.tasks.push({ name: t.text, n: toSize(t.attrs.n) });
          ref(c, "tasks", t);
        }
        topology.collections.push(c);
        break;
      }
      case "main":
        topology.main = buildMain(node, at, ref);
        break;
    }
  }
  const positions: PositionIndex = {
    of: (owner, field, index) =>
      field === undefined ? decls.get(owner) : refs.get(owner)?.[field]?.[index ?? 0],
  };
  return { topology, positions };
}

type At = <T extends object>(obj: T, node: XmlNode) => T;
type Ref = (owner: object, field: string, node: XmlNode) => void;

function buildTask(
  node: XmlNode,
  at: At,
  ref: Ref,
  names: (owner: object, field: string, node: XmlNode | undefined) => string[],
): TaskDecl {
  const exe = child(node, "exe");
  const env = child(node, "env");
  const t = at<TaskDecl>({
    name: node.attrs.name ?? "",
    exe: exe?.text ?? "",
    exeReachable: toBool(exe?.attrs.reachable),
    env: env?.text ?? "",
    envReachable: toBool(env?.attrs.reachable),
    requirements: [],
    properties: [],
    triggers: [],
    assets: [],
  }, node);
  t.requirements = names(t, "requirements", child(node, "requirements"));
  for (const p of child(node, "properties")?.children ?? []) {
    t.properties.push({ name: p.text, access: (p.attrs.access ?? "readwrite") as PropertyAccess });
    ref(t, "properties", p);
  }
  t.triggers = names(t, "triggers", child(node, "triggers"));
  t.assets = names(t, "assets", child(node, "assets"));
  return t;
}

function buildMain(node: XmlNode, at: At, ref: Ref): MainDecl {
  const main = at<MainDecl>(
    { name: node.attrs.name ?? "main", tasks: [], collections: [], groups: [] },
    node,
  );
  const fill = (owner: MainDecl | GroupDecl, n: XmlNode) => {
    if (n.tag === "task") {
      owner.tasks.push(n.text);
      ref(owner, "tasks", n);
    } else if (n.tag === "collection") {
      owner.collections.push(n.text);
      ref(owner, "collections", n);
    }
  };
  for (const c of node.children) {
    if (c.tag !== "group") {
      fill(main, c);
      continue;
    }
    const g = at<GroupDecl>(
      { name: c.attrs.name ?? "", n: toSize(c.attrs.n), tasks: [], collections: [] },
      c,
    );
    for (const gc of c.children) fill(g, gc);
    main.groups.push(g);
  }
  return main;
}

function child(node: XmlNode, tag: string): XmlNode | undefined {
  return node.children.find((c) => c.tag === tag);
}

function toBool(value: string | undefined): boolean {
  const v = value?.trim();
  return !(v === "false" || v === "0");
}

function toSize(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = Number(value.trim());
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

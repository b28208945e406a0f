/**
 * Contracts of the topology area: the declared model (what a topology file says), the expanded runtime model
 * (what DDS's runtime maps hold) and the shapes used by placement.
 *
 * @module
 */

/** Scope of a property: `collection` limits key-value propagation to one collection instance. */
export type PropertyScope = "global" | "collection";
/** What a task may do with a property. */
export type PropertyAccess = "read" | "write" | "readwrite";
/** Kinds of requirement DDS declares; `gpu` and `custom` are enforced by shoal only. */
export type RequirementType = "hostname" | "wnname" | "groupname" | "maxinstances" | "gpu" | "custom";

/** A position in a topology file; line and column are one-based, 0 when unknown (JSON input). */
export interface SourcePosition {
  line: number;
  column: number;
}

/** One problem found in a topology, with where it is, what it names and what to do about it. */
export interface TopologyIssue {
  file: string;
  line: number;
  column: number;
  /** The offending name or value. */
  name: string;
  message: string;
  hint: string;
}

/** `<property name scope>`. */
export interface PropertyDecl {
  name: string;
  scope: PropertyScope;
}

/** `<asset name type="inline" visibility value>`. */
export interface AssetDecl {
  name: string;
  type: "inline";
  visibility: "task" | "global";
  value: string;
}

/** `<declrequirement name type value>`. */
export interface RequirementDecl {
  name: string;
  type: RequirementType;
  value: string;
}

/** `<decltrigger name condition action arg>`. */
export interface TriggerDecl {
  name: string;
  condition: "TaskCrashed";
  action: "RestartTask";
  arg: string;
}

/** A property a task uses, with its access. */
export interface TaskPropertyRef {
  name: string;
  access: PropertyAccess;
}

/** `<decltask>`: references to other declarations are by name. */
export interface TaskDecl {
  name: string;
  exe: string;
  /** DDS default: `true`. */
  exeReachable: boolean;
  /** Empty when the task has no `<env>`. */
  env: string;
  envReachable: boolean;
  requirements: string[];
  properties: TaskPropertyRef[];
  triggers: string[];
  assets: string[];
}

/** One `<name n="…">` entry of a collection's `<tasks>`. */
export interface CollectionTaskRef {
  name: string;
  n: number;
}

/** `<declcollection>`. */
export interface CollectionDecl {
  name: string;
  requirements: string[];
  tasks: CollectionTaskRef[];
}

/** A `<group name n>` inside `<main>`; groups do not nest. */
export interface GroupDecl {
  name: string;
  n: number;
  tasks: string[];
  collections: string[];
}

/** `<main>`: the runtime entry point; its path is always `main`, as in DDS. */
export interface MainDecl {
  name: string;
  tasks: string[];
  collections: string[];
  groups: GroupDecl[];
}

/** The declared model of a topology, after variable substitution. Plain data: JSON-safe. */
export interface Topology {
  name: string;
  /** Variables after overrides, in declaration order. */
  vars: Record<string, string>;
  properties: PropertyDecl[];
  assets: AssetDecl[];
  requirements: RequirementDecl[];
  triggers: TriggerDecl[];
  tasks: TaskDecl[];
  collections: CollectionDecl[];
  main: MainDecl;
}

/** A property as a runtime task sees it: access from the task, scope from the declaration. */
export interface RuntimeProperty {
  name: string;
  access: PropertyAccess;
  scope: PropertyScope;
}

/**
 * One runtime task. Arrays (`requirements`, `properties`, …) are shared by every instance of a declaration:
 * treat them as read-only.
 */
export interface RuntimeTask {
  /** DDS runtime path, e.g. `main/group1/collection1_3/task1_0`. */
  path: string;
  /** Unsigned 64-bit decimal ID: CRC-64 of the path and the task's definition, as DDS computes it. */
  id: string;
  /** Declared task name. */
  name: string;
  /** DDS task index: instance counter of this task name within its parent instance. */
  index: number;
  /** Index of the enclosing collection instance, `null` outside collections. */
  collectionIndex: number | null;
  /** Runtime path of the enclosing collection instance, `null` outside collections. */
  collectionPath: string | null;
  /** Declared collection name, `null` outside collections. */
  collectionName: string | null;
  /** Group name (`main` for elements directly in main), as DDS_GROUP_NAME. */
  groupName: string;
  /** Command line with `%taskIndex%` and, inside collections, `%collectionIndex%` replaced. */
  exe: string;
  exeReachable: boolean;
  env: string;
  envReachable: boolean;
  requirements: readonly RequirementDecl[];
  properties: readonly RuntimeProperty[];
  triggers: readonly TriggerDecl[];
  assets: readonly AssetDecl[];
}

/** One runtime collection instance. */
export interface RuntimeCollection {
  /** DDS runtime path, e.g. `main/group1/collection1_0`. */
  path: string;
  id: string;
  name: string;
  index: number;
  groupName: string;
  requirements: readonly RequirementDecl[];
  tasks: RuntimeTask[];
}

/** A topology expanded to its runtime tasks and collections, in DDS traversal order. */
export interface ExpandedTopology {
  name: string;
  topology: Topology;
  tasks: RuntimeTask[];
  collections: RuntimeCollection[];
}

/** Difference between two expanded topologies, as DDS `--update` computes it; lists of runtime paths. */
export interface TopologyDiff {
  removedTasks: string[];
  addedTasks: string[];
  removedCollections: string[];
  addedCollections: string[];
}

/** An agent's free capacity as announced in the mesh. */
export interface AgentSlots {
  id: string;
  host: string;
  /** Worker-node name (DDS `wnname`, e.g. the SSH plug-in's host id). */
  wnName?: string;
  /** Agent group name (DDS `groupname`). */
  group?: string;
  freeSlots: number;
  /** Free GPUs. */
  gpus?: number;
  labels?: Record<string, string>;
}

/** One task assigned to one agent. */
export interface PlacementAssignment {
  taskPath: string;
  taskId: string;
  agentId: string;
}

/** Result of placement: everything placed, or exactly what is missing. */
export interface PlacementResult {
  assignments: PlacementAssignment[];
  /** Runtime paths of tasks that could not be placed. */
  unplaced: string[];
  /** One line per kind of unplaced task or collection, saying what capacity is missing. */
  reasons: string[];
}

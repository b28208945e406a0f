/**
 * Topologies: DDS topology XML (and an equivalent JSON form) parsed with line/column errors, validated,
 * expanded to runtime tasks with DDS-compatible paths and IDs, diffed, and placed onto agents' slots.
 *
 * @example
 * ```ts
 * import { expandTopology, loadTopology, placeTasks } from "./topology/mod.ts";
 * const expanded = expandTopology(await loadTopology("topo.xml", { vars: { nInstances: "10" } }));
 * const plan = placeTasks(expanded, agents);
 * ```
 *
 * @module
 */
export type {
  AgentSlots,
  AssetDecl,
  CollectionDecl,
  CollectionTaskRef,
  ExpandedTopology,
  GroupDecl,
  MainDecl,
  PlacementAssignment,
  PlacementResult,
  PropertyAccess,
  PropertyDecl,
  PropertyScope,
  RequirementDecl,
  RequirementType,
  RuntimeCollection,
  RuntimeProperty,
  RuntimeTask,
  SourcePosition,
  TaskDecl,
  TaskPropertyRef,
  Topology,
  TopologyDiff,
  TopologyIssue,
  TriggerDecl,
} from "./types.ts";
export { TopologyFileError, TopologyValidationError } from "./errors.ts";
export { DEFAULT_MAX_BYTES, type ParseOptions, parseTopology } from "./parse.ts";
export { loadTopology } from "./load.ts";
export { parseVarOverrides } from "./_vars.ts";
export { countTasks, DEFAULT_MAX_TASKS, type ValidateOptions, validateTopology } from "./validate.ts";
export { expandTopology } from "./expand.ts";
export { diffTopologies } from "./diff.ts";
export { type PlacementOptions, placeTasks } from "./placement.ts";
export { TOPOLOGY_JSON_FORMAT, topologyFromJson, type TopologyJson, topologyToJson } from "./json.ts";
export {
  diffJson,
  formatDiff,
  formatIssues,
  formatTree,
  validateFiles,
  type ValidateFilesResult,
  type ViewCollectionJson,
  type ViewJson,
  viewJson,
  type ViewTaskJson,
} from "./report.ts";

/**
 * The commander: placing and leasing a topology, update, stop, recovery — a library used by the CLI
 * and by agents taking over a dead commander's topology. It speaks to agents over the mesh only
 * (`agent/wire/`).
 *
 * @module
 */
export {
  activateTopology,
  activeRecord,
  errorText,
  expandRecord,
  fetchMembers,
  fetchTasks,
  fetchTopologies,
  putTopology,
  recoverTopology,
  startPaths,
  stopPaths,
  stopTasks,
  stopTopology,
  updateTopology,
} from "./commander.ts";
export type {
  ActivateOptions,
  AgentTasks,
  CommanderInit,
  DeployResult,
  PlacedTask,
  RecoverOptions,
  RecoverResult,
  TasksView,
  TopologySource,
} from "./commander.ts";
export { declaredNames } from "./task_specs.ts";
export { CommanderError } from "./errors.ts";

/**
 * Custom commands: DDS conditions, routing to the agents that hold the addressees and back, the
 * commands agents answer themselves, and the site handler process for the others.
 *
 * @module
 */
export { AGENT_VERBS, agentStatus, DEFAULT_LOG_LINES, startAgentCommands } from "./agent_commands.ts";
export type { AgentCommands, AgentCommandsInit, AgentStatus, StatusSources } from "./agent_commands.ts";
export {
  addressesAgents,
  matchesAgent,
  matchesCondition,
  matchesTool,
  parseCondition,
} from "./conditions.ts";
export type { ConditionTarget, RoutableTask } from "./conditions.ts";
export {
  CMD_DIRECT_PROTOCOL,
  CMD_PROTOCOL,
  CMD_TOPIC,
  CmdResponseSchema,
  CustomCommands,
  listenAsTool,
  MAX_PAYLOAD_BYTES,
} from "./custom_commands.ts";
export type { CmdSender, Command, TaskPlaces, ToolListener } from "./custom_commands.ts";

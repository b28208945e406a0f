/**
 * Who a custom command's condition addresses. The rules, in order:
 *
 * | condition | addresses |
 * | --- | --- |
 * | `agent` | every agent |
 * | `agent:<peerId or host>` | the agent with that peer ID, or the agents announcing that host name |
 * | `tool` | every listening tool |
 * | `tool:<peerId>` | the listening tool with that peer ID |
 * | `""` (empty) | every task of the topology but the sender, and every listening tool |
 * | digits | the task with that DDS task ID |
 * | a path of the topology | that task |
 * | anything else | the tasks whose path the regular expression matches |
 *
 * `agent`, `agent:…`, `tool` and `tool:…` are reserved: they never reach tasks, even where they would match
 * as a regular expression (to match paths containing "agent", write e.g. `.*agent`).
 *
 * @module
 */

/** What a condition addresses; see the module doc for the rules. */
export type ConditionTarget =
  | { kind: "agents"; selector?: string }
  | { kind: "tools"; peerId?: string }
  | { kind: "tasks" };

const RESERVED = /^(agent|tool)(?::(.*))?$/s;

/** Classifies a condition; `agent:` or `tool:` with nothing after it throws `RangeError`. */
export function parseCondition(condition: string): ConditionTarget {
  const m = RESERVED.exec(condition);
  if (!m) return { kind: "tasks" };
  const rest = m[2];
  if (rest === "") {
    throw new RangeError(
      `Condition "${condition}" names no ${m[1]}; write "${m[1]}" for all, or "${m[1]}:<peer ID${
        m[1] === "agent" ? " or host" : ""
      }>"`,
    );
  }
  if (m[1] === "agent") return rest === undefined ? { kind: "agents" } : { kind: "agents", selector: rest };
  return rest === undefined ? { kind: "tools" } : { kind: "tools", peerId: rest };
}

function targetOf(condition: string): ConditionTarget | undefined {
  try {
    return parseCondition(condition);
  } catch {
    return undefined;
  }
}

/** True when `condition` addresses agents (`agent` or `agent:<peerId or host>`). */
export function addressesAgents(condition: string): boolean {
  return targetOf(condition)?.kind === "agents";
}

/** A task, as routing needs it. */
export interface RoutableTask {
  topologyId: string;
  path: string;
  id: string;
}

/** The sender of a command, as routing needs it. */
export interface RoutableSender {
  id: string;
  path: string;
}

/** True when `task` is addressed by `condition` (sent by `sender`); `knownPaths` are the topology's. */
export function matchesCondition(
  condition: string,
  task: RoutableTask,
  sender: RoutableSender,
  knownPaths?: { has(path: string): boolean },
): boolean {
  if (targetOf(condition)?.kind !== "tasks") return false;
  if (condition === "") return task.path !== sender.path || sender.path === "";
  if (/^\d+$/.test(condition)) return task.id === condition;
  if (condition === task.path) return true;
  if (knownPaths?.has(condition)) return false;
  try {
    return new RegExp(condition).test(task.path);
  } catch {
    return false;
  }
}

/** True when the agent `self` is addressed by `condition`. */
export function matchesAgent(condition: string, self: { peerId: string; host: string }): boolean {
  const t = targetOf(condition);
  if (t?.kind !== "agents") return false;
  return t.selector === undefined || t.selector === self.peerId || t.selector === self.host;
}

/** True when the listening tool `peerId` is addressed by `condition` (the empty condition included). */
export function matchesTool(condition: string, peerId: string): boolean {
  if (condition === "") return true;
  const t = targetOf(condition);
  return t?.kind === "tools" && (t.peerId === undefined || t.peerId === peerId);
}

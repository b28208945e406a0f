/**
 * Who may re-place a topology's lost tasks: a side of the mesh that sees a strict majority of the agents
 * the topology's record names as its membership (those alive when the record was written — the last
 * membership every side agreed on). Agents proven dead — their host refuses connections to their port,
 * so the process is gone and its tasks with it — leave the count: a crash is not a partition.
 *
 * @module
 */
import type { TopologyRecord } from "../wire/mod.ts";

/** How one side stands for a topology. */
export interface Quorum {
  /** Agents of the record's membership this side sees alive. */
  sees: number;
  /** The record's membership, less agents proven dead. */
  of: number;
  /** How many make a strict majority of `of`. */
  need: number;
  majority: boolean;
}

/** The agents whose majority decides for `record`: its `members`, or for older records its holders. */
export function quorumMembers(record: Pick<TopologyRecord, "members" | "placement">): string[] {
  return record.members?.length ? record.members : Object.keys(record.placement);
}

/** Counts a side: `alive` as this agent's view has them, `proven` dead beyond doubt. */
export function quorumOf(
  record: Pick<TopologyRecord, "members" | "placement">,
  alive: ReadonlySet<string>,
  proven: ReadonlySet<string> = new Set(),
): Quorum {
  const members = quorumMembers(record).filter((m) => !proven.has(m));
  const sees = members.filter((m) => alive.has(m)).length;
  // Every member proven dead: nobody else can hold the tasks, and nobody is left to ask.
  const need = members.length === 0 ? 0 : Math.floor(members.length / 2) + 1;
  return { sees, of: members.length, need, majority: sees >= need };
}

/**
 * Whether a queued topology fits the pool: the same placement the commander will use, on the free slots
 * of the membership view (an agent refusing leases for its health announces none free).
 *
 * @module
 */
import type { Member } from "../mesh/mod.ts";
import { type AgentSlots, type ExpandedTopology, placeTasks } from "../topology/mod.ts";
import { expandRecord } from "../commander/mod.ts";
import type { QueueEntry } from "./protocols.ts";

/** Alive members as placement's agents, with their free (or, with `all`, total) slots. */
export function agentSlots(members: readonly Member[], all = false): AgentSlots[] {
  return members.filter((m) => m.state === "alive" && m.slots.total > 0).map((m) => ({
    id: m.id,
    host: m.host,
    wnName: m.host,
    freeSlots: all ? m.slots.total : m.slots.free,
    ...(m.group ? { group: m.group } : {}),
    ...(m.gpus ? { gpus: m.gpus } : {}),
    labels: m.labels,
  }));
}

/** Expands entries once per (ID, version). */
export class Expansions {
  readonly #cache = new Map<string, { version: number; expanded: ExpandedTopology }>();

  get(entry: QueueEntry): ExpandedTopology {
    const hit = this.#cache.get(entry.id);
    if (hit?.version === entry.version) return hit.expanded;
    const expanded = expandRecord(entry);
    this.#cache.set(entry.id, { version: entry.version, expanded });
    return expanded;
  }

  forget(id: string): void {
    this.#cache.delete(id);
  }
}

/** True when every task of `expanded` can be placed on `agents`. */
export function fitsOn(expanded: ExpandedTopology, agents: readonly AgentSlots[]): boolean {
  return placeTasks(expanded, agents).unplaced.length === 0;
}

/**
 * Difference of two expanded topologies, as DDS's `--update` computes it.
 *
 * @module
 */
import type { ExpandedTopology, TopologyDiff } from "./types.ts";

/**
 * Compares runtime IDs: a task or collection is unchanged only if its runtime path and its whole definition
 * are (both enter the ID). A changed definition therefore shows as removed and added under the same path.
 * Lists are runtime paths in each topology's expansion order.
 *
 * @example
 * ```ts
 * const { removedTasks, addedTasks } = diffTopologies(expandTopology(oldTopo), expandTopology(newTopo));
 * ```
 */
export function diffTopologies(oldTopo: ExpandedTopology, newTopo: ExpandedTopology): TopologyDiff {
  const only = (a: { id: string; path: string }[], b: { id: string }[]) => {
    const ids = new Set<string>();
    for (const x of b) ids.add(x.id);
    const out: string[] = [];
    for (const x of a) if (!ids.has(x.id)) out.push(x.path);
    return out;
  };
  return {
    removedTasks: only(oldTopo.tasks, newTopo.tasks),
    addedTasks: only(newTopo.tasks, oldTopo.tasks),
    removedCollections: only(oldTopo.collections, newTopo.collections),
    addedCollections: only(newTopo.collections, oldTopo.collections),
  };
}

/**
 * The tree over a generation's participating agents: sorted by peer ID, rotated so that the root is the
 * agent a hash of the collective's identity picks (concurrent collectives spread their roots), then a
 * complete k-ary tree in that order. Every agent computes the same tree from the same topology record,
 * without talking. Depth is ceil(log_k agents); each agent talks to at most k children and one parent.
 *
 * @module
 */

/** FNV-1a, 32 bits. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A tree over agents. */
export interface Tree {
  root: string;
  /** Agents in tree order (the root first). */
  agents: readonly string[];
  parent(agent: string): string | undefined;
  children(agent: string): string[];
  /** Tree depth (a lone root: 0). */
  depth: number;
}

/** Builds the tree of `agents` (any order, no duplicates) for the collective identified by `key`. */
export function buildTree(agents: readonly string[], key: string, fanout: number): Tree {
  if (agents.length === 0) throw new RangeError("A tree needs at least one agent");
  if (!Number.isInteger(fanout) || fanout < 2) throw new RangeError(`Fan-out must be ≥ 2, not ${fanout}`);
  const sorted = [...agents].sort();
  const r = hash32(key) % sorted.length;
  const order = [...sorted.slice(r), ...sorted.slice(0, r)];
  const index = new Map(order.map((a, i) => [a, i]));
  let depth = 0;
  for (let last = order.length - 1; last > 0; last = Math.floor((last - 1) / fanout)) depth++;
  return {
    root: order[0]!,
    agents: order,
    depth,
    parent(agent) {
      const i = index.get(agent);
      return i === undefined || i === 0 ? undefined : order[Math.floor((i - 1) / fanout)];
    },
    children(agent) {
      const i = index.get(agent);
      if (i === undefined) return [];
      const out: string[] = [];
      for (let c = i * fanout + 1; c <= i * fanout + fanout && c < order.length; c++) out.push(order[c]!);
      return out;
    },
  };
}

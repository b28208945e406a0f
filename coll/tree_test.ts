import { assert, assertEquals } from "../tests/_assert.ts";
import { buildTree } from "./tree.ts";

const ids = (n: number) => Array.from({ length: n }, (_, i) => `peer${String(i).padStart(4, "0")}`);

Deno.test("coll tree: every agent but the root has one parent, and is its parent's child", () => {
  for (const n of [1, 2, 5, 33, 1000]) {
    for (const k of [2, 3, 8, 32]) {
      const t = buildTree(ids(n), `topo\0name${n}`, k);
      assertEquals(t.agents.length, n);
      let edges = 0;
      for (const a of t.agents) {
        const p = t.parent(a);
        if (a === t.root) assertEquals(p, undefined);
        else {
          assert(p !== undefined, `${a} has a parent`);
          assert(t.children(p).includes(a), `${a} is a child of ${p}`);
          edges++;
        }
        assert(t.children(a).length <= k, "at most k children");
      }
      assertEquals(edges, n - 1);
    }
  }
});

Deno.test("coll tree: depth is ceil(log_k) of the agents, so hops grow with the log", () => {
  assertEquals(buildTree(ids(1), "x", 8).depth, 0);
  assertEquals(buildTree(ids(9), "x", 8).depth, 1);
  assertEquals(buildTree(ids(10), "x", 8).depth, 2);
  assertEquals(buildTree(ids(1000), "x", 32).depth, 2);
  assertEquals(buildTree(ids(4), "x", 2).depth, 2);
});

Deno.test("coll tree: the same agents in any order give the same tree; names spread the roots", () => {
  const a = ids(50);
  const t1 = buildTree(a, "t\0n", 4);
  const t2 = buildTree([...a].reverse(), "t\0n", 4);
  assertEquals(t1.agents, t2.agents);
  const roots = new Set(Array.from({ length: 40 }, (_, i) => buildTree(a, `t\0name${i}`, 4).root));
  assert(roots.size > 10, `roots of 40 names spread over ${roots.size} agents`);
});

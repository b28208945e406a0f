import { assert, assertEquals } from "../../tests/_assert.ts";
import { collectTree, isGone, readProcessTable } from "./_process_tree.ts";
import type { ProcessTable } from "./_process_tree.ts";

function table(rows: [pid: number, ppid: number, pgid: number, sid: number][]): ProcessTable {
  const t: ProcessTable = { entries: new Map(), children: new Map(), groups: new Map() };
  for (const [pid, ppid, pgid, sid] of rows) {
    t.entries.set(pid, { pid, ppid, pgid, sid, zombie: false });
    t.children.set(ppid, [...(t.children.get(ppid) ?? []), pid]);
    t.groups.set(pgid, [...(t.groups.get(pgid) ?? []), pid]);
  }
  return t;
}

Deno.test("process tree: descendants by parent and by group, across sessions, root excluded", () => {
  const t = table([
    [100, 1, 100, 100], // the task
    [101, 100, 100, 100], // child in its group
    [102, 100, 102, 102], // child that called setsid
    [103, 102, 102, 102], // its child
    [104, 1, 100, 100], // orphan still in the task's group
    [105, 104, 105, 105], // the orphan's setsid'd child
    [200, 1, 200, 200], // unrelated
  ]);
  assertEquals([...collectTree(t, [100], [100])].sort(), [101, 102, 103, 104, 105]);
  assertEquals([...collectTree(t, [200], [200])], []);
});

Deno.test("process tree: the live table holds this process and its parent", () => {
  const t = readProcessTable();
  const self = t.entries.get(Deno.pid);
  assert(self, "this process is in the table");
  assertEquals(self.ppid, Deno.ppid);
  assert(t.children.get(Deno.ppid)?.includes(Deno.pid));
  assertEquals(isGone(Deno.pid), false);
  assertEquals(isGone(2 ** 22 + 1), true);
});

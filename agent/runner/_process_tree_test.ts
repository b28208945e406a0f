import { spawn } from "node:child_process";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import {
  collectTree,
  isGone,
  LISTS_CHILDREN,
  readProcessTable,
  readProcessTableAround,
  signal,
} from "./_process_tree.ts";
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

/** A process's command line, or "" once it is gone. */
function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

Deno.test("process tree: the table around a task holds its tree and init's orphans, not every process", async () => {
  // A task with a child, a setsid'd child and, through a subshell that exits, an orphan init adopts.
  const task = spawn("sh", ["-c", "sleep 61 & setsid sleep 62 & (setsid sleep 63 &); wait"], {
    detached: true,
    stdio: "ignore",
  });
  const unrelated = spawn("sleep", ["64"], { stdio: "ignore" });
  try {
    const find = (t: ProcessTable, what: string) => [...t.entries.keys()].find((p) => cmdline(p) === what);
    const t = await waitFor(() => {
      const t = readProcessTableAround([task.pid!]);
      return find(t, "sleep 61") && find(t, "sleep 62") ? t : undefined;
    }, { what: "the shell to fork its children" });
    const under = collectTree(t, [task.pid!], [task.pid!]);
    assert(under.has(find(t, "sleep 61")!) && under.has(find(t, "sleep 62")!), "children, setsid'd too");
    if (!LISTS_CHILDREN) return; // the whole table: nothing more to check
    assertEquals(t.entries.has(unrelated.pid!), false, "a process outside the tree is not read");
    assertEquals(t.entries.has(Deno.pid), false);
    // The orphan, once its subshell is gone: init adopts it unless another subreaper reaps here.
    const orphan = await waitFor(
      () =>
        readProcessTable().entries.values().find((e) =>
          cmdline(e.pid) === "sleep 63" && !cmdline(e.ppid).startsWith("sh ")
        ),
      { what: "the orphan to be adopted" },
    );
    if (orphan.ppid === 1) {
      assert(readProcessTableAround([task.pid!]).entries.has(orphan.pid), "init's orphans are in the table");
    }
  } finally {
    for (const e of readProcessTable().entries.values()) {
      if (/^sleep 6[1-4]$/.test(cmdline(e.pid))) signal(e.pid, "SIGKILL");
    }
    signal(-task.pid!, "SIGKILL");
  }
});

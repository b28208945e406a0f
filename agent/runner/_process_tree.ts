/**
 * Process trees from `/proc`: one scan gives every process's parent, group and session, so a task's
 * descendants can be found even when they left its process group (`setsid`).
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";

/** One line of the process table. */
export interface ProcEntry {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Exited but not yet reaped: as good as gone. */
  zombie: boolean;
}

/** A snapshot of the processes of this host, with indexes by parent and by process group. */
export interface ProcessTable {
  entries: Map<number, ProcEntry>;
  children: Map<number, number[]>;
  groups: Map<number, number[]>;
  /**
   * Set on a partial table ({@linkcode readProcessTableAround}): reads the trees under `pids` into it, so
   * that {@linkcode collectTree} finds them.
   */
  grow?: (pids: Iterable<number>) => void;
}

/** Whether this host has a Linux-style `/proc` (else trees degrade to process groups). */
export const HAS_PROC: boolean = (() => {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
})();

function parseStat(text: string): ProcEntry | undefined {
  // `pid (comm) state ppid pgrp session ...`; comm may hold spaces and parentheses.
  const close = text.lastIndexOf(")");
  const f = text.slice(close + 2).split(" ", 4);
  if (close < 0 || f.length < 4) return undefined;
  return {
    pid: Number.parseInt(text, 10),
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    sid: Number(f[3]),
    zombie: f[0] === "Z" || f[0] === "X",
  };
}

function push<K>(map: Map<K, number[]>, key: K, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Whether the kernel lists each thread's children (`/proc/<pid>/task/<tid>/children`, CONFIG_PROC_CHILDREN). */
export const LISTS_CHILDREN: boolean = HAS_PROC && (() => {
  try {
    readFileSync(`/proc/self/task/${process.pid}/children`);
    return true;
  } catch {
    return false;
  }
})();

/** The children of `pid`, of all its threads; empty once it is gone. */
function childrenOf(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, "latin1");
    } catch {
      continue; // the thread ended
    }
    for (const c of text.split(" ")) if (c) out.push(Number(c));
  }
  return out;
}

/**
 * The part of the process table a stop needs, read without scanning every process of the host: the trees
 * under `roots` (walked through each process's list of children) and the orphans that init adopted (where
 * a task's escaped daemons end up). On one machine running 100 agents of 100 tasks each, the whole table is
 * 10,000 `stat` files a scan, and every agent scanned it twice a stop: the stop of all 10,000 took 44 s.
 * Falls back to {@linkcode readProcessTable} where the kernel does not list children.
 */
export function readProcessTableAround(roots: Iterable<number>): ProcessTable {
  if (!LISTS_CHILDREN) return readProcessTable();
  const table: ProcessTable = { entries: new Map(), children: new Map(), groups: new Map() };
  const add = (pid: number): ProcEntry | undefined => {
    if (table.entries.has(pid)) return undefined;
    let entry: ProcEntry | undefined;
    try {
      entry = parseStat(readFileSync(`/proc/${pid}/stat`, "latin1"));
    } catch {
      return undefined; // exited while we looked
    }
    if (!entry || entry.zombie) return undefined;
    table.entries.set(entry.pid, entry);
    push(table.children, entry.ppid, entry.pid);
    push(table.groups, entry.pgid, entry.pid);
    return entry;
  };
  const walk = (from: Iterable<number>) => {
    const stack = [...from];
    while (stack.length > 0) {
      const pid = stack.pop()!;
      if (pid === 1 || table.entries.has(pid) || !add(pid)) continue; // init, seen, or gone
      for (const c of childrenOf(pid)) if (!table.entries.has(c)) stack.push(c);
    }
  };
  table.grow = (pids) => {
    const stack: number[] = [];
    for (const p of pids) {
      add(p);
      stack.push(...childrenOf(p));
    }
    walk(stack);
  };
  walk(roots);
  // Orphans: their own trees are read only if their environment marks them as a task's (`grow`).
  for (const pid of childrenOf(1)) add(pid);
  return table;
}

/** Reads the whole process table; zombies are left out. Empty without `/proc`. */
export function readProcessTable(): ProcessTable {
  const table: ProcessTable = { entries: new Map(), children: new Map(), groups: new Map() };
  if (!HAS_PROC) return table;
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let entry: ProcEntry | undefined;
    try {
      entry = parseStat(readFileSync(`/proc/${name}/stat`, "latin1"));
    } catch {
      continue; // exited while we looked
    }
    if (!entry || entry.zombie) continue;
    table.entries.set(entry.pid, entry);
    push(table.children, entry.ppid, entry.pid);
    push(table.groups, entry.pgid, entry.pid);
  }
  return table;
}

/** Every live process in the trees under `roots` and in the process groups `pgids` (roots excluded). */
export function collectTree(
  table: ProcessTable,
  roots: Iterable<number>,
  pgids: Iterable<number>,
): Set<number> {
  const out = new Set<number>();
  const stack: number[] = [];
  for (const r of roots) stack.push(r);
  for (const g of pgids) for (const p of table.groups.get(g) ?? []) stack.push(p);
  const rootSet = new Set(roots);
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (!rootSet.has(pid)) {
      if (out.has(pid)) continue;
      out.add(pid);
    }
    for (const child of table.children.get(pid) ?? []) if (!out.has(child)) stack.push(child);
  }
  return out;
}

/**
 * Finds session and group leaders outside `known` whose environment holds `name=<value>` for one of the
 * given values: a task's descendants that both left its session and lost their parent, so that no
 * parent walk reaches them. Returns value → pids.
 */
export function findByEnv(
  table: ProcessTable,
  name: string,
  values: Set<string>,
  known: Set<number>,
): Map<string, number[]> {
  const found = new Map<string, number[]>();
  if (values.size === 0) return found;
  const prefix = `${name}=`;
  for (const e of table.entries.values()) {
    if ((e.sid !== e.pid && e.pgid !== e.pid) || known.has(e.pid) || e.pid === process.pid) continue;
    // Only orphans need this search: a process whose parent lives is found by the parent walk. Reading
    // every task's environ instead costs ~1 ms each and made stopping 1,000 tasks take seconds.
    if (e.ppid > 1 && table.entries.has(e.ppid)) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${e.pid}/environ`, "utf8");
    } catch {
      continue; // not ours, or gone
    }
    const at = env.startsWith(prefix) ? 0 : env.indexOf(`\0${prefix}`) + 1;
    if (at === 0 && !env.startsWith(prefix)) continue;
    const end = env.indexOf("\0", at);
    const value = env.slice(at + prefix.length, end < 0 ? undefined : end);
    if (values.has(value)) push(found, value, e.pid);
  }
  return found;
}

/** True once `pid` has exited (a zombie counts as exited). */
export function isGone(pid: number): boolean {
  if (HAS_PROC) {
    try {
      const entry = parseStat(readFileSync(`/proc/${pid}/stat`, "latin1"));
      return !entry || entry.zombie;
    } catch {
      return true;
    }
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as { code?: string }).code === "ESRCH";
  }
}

/** Sends a signal, ignoring processes that are already gone. Negative `pid` = a process group. */
export function signal(pid: number, sig: "SIGTERM" | "SIGKILL"): void {
  try {
    process.kill(pid, sig);
  } catch { /* ESRCH: gone already; EPERM: not ours (pid reused) */ }
}

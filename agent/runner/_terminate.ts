/**
 * Stops whole process trees: SIGTERM to each task's process group and to every descendant that left it,
 * SIGKILL to whatever is left after the grace period, and a final `/proc` check that nothing remains.
 *
 * @module
 */
import { collectTree, findByEnv, isGone, readProcessTableAround, signal } from "./_process_tree.ts";
import type { ProcessTable } from "./_process_tree.ts";

/** One task to terminate. */
export interface TerminateTarget {
  /** The task's root pid, also its process group id (it was spawned detached). */
  pid: number;
  /** True once the runtime reported the root's exit (it is our child: only then is it reaped). */
  exited(): boolean;
  /** Value of the marker variable in the task's environment, to find descendants that escaped. */
  marker?: string;
}

/** Options of {@linkcode terminateTrees}. */
export interface TerminateOptions {
  graceMs: number;
  /** Name of the environment variable whose value is each target's `marker`. */
  markerName: string;
  /** How long to wait for SIGKILLed processes before giving up (default 5 s). */
  killWaitMs?: number;
}

/** Outcome per target, in order. */
export interface TerminateResult {
  /** True when SIGKILL was needed. */
  killed: boolean;
  /** Pids that were still there when we gave up (should stay empty). */
  survivors: number[];
}

const MAX_KILL_ROUNDS = 5;

function membersOf(
  table: ProcessTable,
  targets: TerminateTarget[],
  extra: Set<number>[],
  markerName: string,
): Set<number>[] {
  const members = targets.map((t, i) => {
    const roots = [t.pid, ...extra[i]!];
    return collectTree(table, roots, [t.pid, ...extra[i]!]);
  });
  const known = new Set<number>();
  for (const [i, t] of targets.entries()) {
    known.add(t.pid);
    for (const p of members[i]!) known.add(p);
  }
  const markers = new Map<string, number>();
  for (const [i, t] of targets.entries()) if (t.marker !== undefined) markers.set(t.marker, i);
  // Escaped processes: no parent walk reaches them, but they carry the task's marker.
  const escaped = findByEnv(table, markerName, new Set(markers.keys()), known);
  for (const [value, pids] of escaped) {
    const i = markers.get(value)!;
    table.grow?.(pids);
    for (const p of collectTree(table, pids, pids)) members[i]!.add(p);
    for (const p of pids) members[i]!.add(p);
  }
  for (const [i, t] of targets.entries()) members[i]!.delete(t.pid);
  return members;
}

function send(
  targets: TerminateTarget[],
  members: Set<number>[],
  table: ProcessTable,
  sig: "SIGTERM" | "SIGKILL",
) {
  for (const [i, t] of targets.entries()) {
    signal(-t.pid, sig);
    for (const p of members[i]!) {
      // Group members already got it through the group.
      if (table.entries.get(p)?.pgid !== t.pid) signal(p, sig);
    }
  }
}

/** Waits until every root has exited and every member is gone, or until `deadline`; true if all gone. */
async function waitGone(
  targets: TerminateTarget[],
  members: Set<number>[],
  deadline: number,
): Promise<boolean> {
  let interval = 2;
  while (true) {
    let pending = false;
    for (const [i, t] of targets.entries()) {
      const set = members[i]!;
      for (const p of set) if (isGone(p)) set.delete(p);
      if (set.size > 0 || !t.exited()) pending = true;
    }
    if (!pending) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise((r) => setTimeout(r, Math.min(interval, left)));
    interval = Math.min(interval * 2, 50);
  }
}

/**
 * Terminates the process trees of `targets`: SIGTERM, then SIGKILL after `graceMs`, and resolves once no
 * process of theirs is left (checked against a fresh `/proc` scan).
 */
export async function terminateTrees(
  targets: TerminateTarget[],
  options: TerminateOptions,
): Promise<TerminateResult[]> {
  const results: TerminateResult[] = targets.map(() => ({ killed: false, survivors: [] }));
  if (targets.length === 0) return results;
  // Collect the trees before signalling: once a parent dies its children are re-parented out of reach.
  const around = (extra: Set<number>[] = []) =>
    readProcessTableAround([...targets.map((t) => t.pid), ...extra.flatMap((m) => [...m])]);
  let table = around();
  let members = membersOf(table, targets, targets.map(() => new Set()), options.markerName);
  send(targets, members, table, "SIGTERM");
  await waitGone(targets, members, Date.now() + options.graceMs);
  for (let round = 0; round < MAX_KILL_ROUNDS; round++) {
    // Anything still in the groups or trees now (late forks included) gets SIGKILL.
    table = around(members);
    members = membersOf(table, targets, members, options.markerName);
    const rest = targets.map((t, i) => members[i]!.size > 0 || !t.exited());
    if (!rest.includes(true)) return results;
    const idx = targets.flatMap((_, i) => (rest[i] ? [i] : []));
    const sub = idx.map((i) => targets[i]!);
    const subMembers = idx.map((i) => members[i]!);
    for (const i of idx) results[i]!.killed = true;
    send(sub, subMembers, table, "SIGKILL");
    await waitGone(sub, subMembers, Date.now() + (options.killWaitMs ?? 5_000));
  }
  for (const [i, set] of members.entries()) results[i]!.survivors = [...set].filter((p) => !isGone(p));
  return results;
}

/**
 * Reading Grid Engine's `qstat` table (one line per job, or per array task with `-g d`) and its state codes.
 *
 * @module
 */
import type { JobStatus } from "./types.ts";

/** One line of `qstat`: a job, or some tasks of an array job. */
export interface QueueEntry {
  state: string;
  /** The array tasks of the line (one when running; a pending line may be a range `2-4:1` or `1,3`). */
  tasks?: number[];
}

/** Task numbers of a `ja-task-ID` field: `3`, `2-6:2`, `1,3,5-7:1`. */
function taskList(text: string): number[] | undefined {
  if (!/^[\d,:-]+$/.test(text)) return undefined;
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part);
    if (!m) return undefined;
    const from = Number(m[1]), to = Number(m[2] ?? m[1]), step = Math.max(1, Number(m[3] ?? 1));
    for (let t = from; t <= to && out.length < 100_000; t += step) out.push(t);
  }
  return out;
}

/**
 * The queue's entries by job ID (absent: no longer in the queue), from `qstat -g d`: one line per
 * array task. Columns are fixed-width; the task is read under the header's `ja-task-ID`.
 */
export function parseQstat(text: string): Map<string, QueueEntry[]> {
  const out = new Map<string, QueueEntry[]>();
  const lines = text.split("\n");
  const header = lines.find((l) => l.startsWith("job-ID"));
  const taskCol = header?.indexOf("ja-task-ID") ?? -1;
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (!/^\d+$/.test(f[0] ?? "") || !f[4]) continue;
    const tasks = taskCol >= 0 ? taskList(line.slice(taskCol).trim()) : undefined;
    const list = out.get(f[0]!) ?? [];
    list.push({ state: f[4], ...(tasks ? { tasks } : {}) });
    out.set(f[0]!, list);
  }
  return out;
}

/** Our state of a Grid Engine state code (`qw`, `hqw`, `r`, `t`, `dr`, `Eqw`, …). */
export function stateOf(code: string): JobStatus["state"] {
  if (code.includes("E")) return "unknown";
  if (/[rtsSTR]/.test(code)) return "running";
  if (code.includes("q") || code.includes("w")) return "pending";
  return "unknown";
}

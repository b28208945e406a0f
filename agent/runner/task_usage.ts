/**
 * What each running task costs its host, for `shoal top`: CPU time and resident memory of its whole
 * process tree (its process group and every descendant), read from `/proc` when asked — never on a timer.
 * Tools take two readings and divide the CPU time between them by the time between them.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import * as v from "valibot";
import { handleRequests, type MeshNode, request } from "../../mesh/mod.ts";
import type { TaskRunner } from "./runner.ts";

/** Ask an agent what its running tasks use. */
export const TASK_USAGE_PROTOCOL = "/shoal/task-usage/1.0.0";

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on every Linux we run on). */
const CLK_TCK = 100;
const PAGE_BYTES = 4096;

/** One task's usage. */
export interface TaskUsage {
  topologyId: string;
  path: string;
  pid: number;
  /** Processes in its tree. */
  processes: number;
  /** CPU seconds (user + system) of the processes alive now, since each started. */
  cpuSeconds: number;
  rssBytes: number;
}

const Str = v.pipe(v.string(), v.maxLength(4096));
/** Request of {@linkcode TASK_USAGE_PROTOCOL}. */
export const TaskUsageRequestSchema = v.object({ topologyId: v.optional(Str) });
/** Response of {@linkcode TASK_USAGE_PROTOCOL}. */
export const TaskUsageResponseSchema = v.object({
  agent: Str,
  host: Str,
  /** Wall-clock ms of the reading. */
  at: v.number(),
  tasks: v.array(v.object({
    topologyId: Str,
    path: Str,
    pid: v.number(),
    processes: v.number(),
    cpuSeconds: v.number(),
    rssBytes: v.number(),
  })),
});
/** An agent's answer. */
export type TaskUsageResponse = v.InferOutput<typeof TaskUsageResponseSchema>;

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  ticks: number;
  rssPages: number;
}

function readProcs(): Proc[] {
  const out: Proc[] = [];
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return out; // no /proc: nothing to report
  }
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/stat`, "latin1");
    } catch {
      continue; // exited while we looked
    }
    // `pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime … rss`
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    if (f.length < 22 || f[0] === "Z") continue;
    out.push({
      pid: Number(name),
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      ticks: Number(f[11]) + Number(f[12]),
      rssPages: Number(f[21]),
    });
  }
  return out;
}

/** Reads the usage of every running task of `runner` (or of one topology). */
export function readTaskUsage(runner: TaskRunner, topologyId?: string): TaskUsage[] {
  const running = runner.list(topologyId ? { topologyId } : {}).filter((t) => t.state === "running" && t.pid);
  if (running.length === 0) return [];
  const procs = readProcs();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const children = new Map<number, number[]>();
  const groups = new Map<number, number[]>();
  for (const p of procs) {
    (children.get(p.ppid) ?? children.set(p.ppid, []).get(p.ppid)!).push(p.pid);
    (groups.get(p.pgid) ?? groups.set(p.pgid, []).get(p.pgid)!).push(p.pid);
  }
  return running.map((t) => {
    const seen = new Set<number>();
    const stack = [t.pid!, ...(groups.get(t.pid!) ?? [])];
    while (stack.length) {
      const pid = stack.pop()!;
      if (seen.has(pid) || !byPid.has(pid)) continue;
      seen.add(pid);
      stack.push(...(children.get(pid) ?? []));
    }
    let ticks = 0;
    let pages = 0;
    for (const pid of seen) {
      const p = byPid.get(pid)!;
      ticks += p.ticks;
      pages += p.rssPages;
    }
    return {
      topologyId: t.topologyId,
      path: t.path,
      pid: t.pid!,
      processes: seen.size,
      cpuSeconds: ticks / CLK_TCK,
      rssBytes: pages * PAGE_BYTES,
    };
  });
}

/** Answers {@linkcode TASK_USAGE_PROTOCOL} on an agent. */
export async function startTaskUsageService(
  init: { node: MeshNode; runner: TaskRunner; host: string },
): Promise<void> {
  await handleRequests(init.node, TASK_USAGE_PROTOCOL, {
    schema: TaskUsageRequestSchema,
    maxResponseBytes: 64 * 1024 * 1024,
    handler: (req): TaskUsageResponse => ({
      agent: init.node.peerId,
      host: init.host,
      at: Date.now(),
      tasks: readTaskUsage(init.runner, req.topologyId),
    }),
  });
}

/** Asks one agent for its tasks' usage. */
export async function fetchTaskUsage(
  node: MeshNode,
  agent: string,
  options: { topologyId?: string; signal?: AbortSignal } = {},
): Promise<TaskUsageResponse> {
  return await request(
    node,
    agent,
    TASK_USAGE_PROTOCOL,
    options.topologyId ? { topologyId: options.topologyId } : {},
    {
      schema: TaskUsageResponseSchema,
      maxBytes: 64 * 1024 * 1024,
      timeoutMs: 10_000,
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
}

/**
 * Which processes belong to a test's `SHOAL_HOME`: agents, their reapers, their tasks, and the CLI runs
 * themselves. Used to check that a command "leaves nothing running" without knowing what it started.
 *
 * @module
 */
import { readFileSync, readlinkSync } from "node:fs";
import { isRunning } from "./_harness.ts";

/**
 * PIDs of live processes tied to `dir`: named in their command line (an agent's `--data-dir`), working
 * inside it (a task in its sandbox), or started with `SHOAL_HOME=dir` (everything the CLI spawned that
 * kept its environment). This test process is left out.
 */
export function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === process.pid || !isRunning(pid)) continue;
    if (belongsTo(pid, dir)) pids.push(pid);
  }
  return pids;
}

function belongsTo(pid: number, dir: string): boolean {
  const read = (what: string) => {
    try {
      return readFileSync(`/proc/${pid}/${what}`, "utf8");
    } catch {
      return ""; // gone meanwhile, or not ours to read
    }
  };
  if (read("cmdline").includes(dir)) return true;
  if (read("environ").split("\0").includes(`SHOAL_HOME=${dir}`)) return true;
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return cwd === dir || cwd.startsWith(`${dir}/`);
  } catch {
    return false;
  }
}

/** One line per process, for assertion messages: `pid command line`. */
export function describeProcesses(pids: readonly number[]): string {
  return pids.map((pid) => {
    try {
      return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()}`;
    } catch {
      return `${pid} (gone)`;
    }
  }).join("\n");
}

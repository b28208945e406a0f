/**
 * Spawns one run of a task: its own session and process group, stdin closed, stdout and stderr appended to
 * log files. Kept synchronous and small: it is the hot path of starting thousands of tasks.
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, open, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

/** What to spawn. */
export interface SpawnRequest {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

function openAppend(file: string): Promise<number> {
  return new Promise((resolve, reject) => open(file, "a", (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** Closes descriptors (synchronously: cheaper than a trip through the thread pool). */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) closeSync(fd);
}

/** Opens (creating) the two log files for appending, in parallel off the main thread. */
export async function openLogs(stdoutFile: string, stderrFile: string): Promise<[number, number]> {
  const [out, err] = await Promise.allSettled([openAppend(stdoutFile), openAppend(stderrFile)]);
  if (out.status === "fulfilled" && err.status === "fulfilled") return [out.value, err.value];
  closeFds([out, err].flatMap((r) => (r.status === "fulfilled" ? [r.value] : [])));
  throw out.status === "rejected" ? out.reason : (err as PromiseRejectedResult).reason;
}

/**
 * Spawns the process with stdout and stderr on `fds` (which it closes). `child.pid` is set when it started;
 * when it is not, an `error` event follows on the next tick (attach a listener at once).
 */
export function spawnTask(req: SpawnRequest, fds: [number, number]): ChildProcess {
  try {
    return spawn(req.file, req.args, {
      cwd: req.cwd,
      env: req.env,
      // detached: setsid(), so the task leads its own process group and can be signalled as a whole.
      detached: true,
      stdio: ["ignore", fds[0], fds[1]],
    });
  } finally {
    closeFds(fds); // the child holds its own copies
  }
}

/** A sentence for people from a spawn error: `Executable "foo" not found (ENOENT)`. */
export function spawnFailureReason(file: string, err: unknown): string {
  const code = (err as { code?: string })?.code;
  if (code === "ENOENT") {
    return file.includes("/")
      ? `Executable "${file}" not found (ENOENT)`
      : `Executable "${file}" not found in PATH (ENOENT)`;
  }
  if (code === "EACCES") return `Executable "${file}" is not executable or not permitted (EACCES)`;
  const message = err instanceof Error ? err.message : String(err);
  return `Could not start "${file}": ${message}${code ? ` (${code})` : ""}`;
}

const resolved = new Map<string, string>();

/**
 * Why `file` cannot be executed from `cwd` with `PATH`, or undefined when it can, checked before spawning so
 * that the reason is the same on every runtime. Lookups in PATH are cached.
 */
export function executableProblem(file: string, cwd: string, path = ""): string | undefined {
  const check = (candidate: string): "ok" | "ENOENT" | "EACCES" => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isDirectory() ? "EACCES" : "ok";
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ENOENT" ? "ENOENT" : "EACCES";
    }
  };
  if (file.includes("/")) {
    const r = check(isAbsolute(file) ? file : join(cwd, file));
    return r === "ok" ? undefined : spawnFailureReason(file, { code: r });
  }
  const key = `${file}\0${path}`;
  if (resolved.has(key)) return undefined;
  let seen: "ENOENT" | "EACCES" = "ENOENT";
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const r = check(join(dir, file));
    if (r === "ok") {
      resolved.set(key, join(dir, file));
      return undefined;
    }
    if (r === "EACCES") seen = "EACCES";
  }
  return spawnFailureReason(file, { code: seen });
}

/**
 * Stopping local processes we no longer have a handle on (detached agents): SIGTERM, wait, SIGKILL.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { isGone } from "../agent/mod.ts";
import type { CancelResult } from "./types.ts";

/** True when a process with this PID exists (and is not a zombie): the agent's own liveness check. */
export function isAlive(pid: number): boolean {
  return !isGone(pid);
}

/** True when process `pid` runs a command line containing `marker` (guards against PID reuse). */
export function cmdlineIncludes(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").some((a) => a.includes(marker));
  } catch {
    return isAlive(pid);
  }
}

async function waitGone(pid: number, ms: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + ms;
  let pause = 10;
  while (Date.now() < deadline && !signal?.aborted) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 100);
  }
  return !isAlive(pid);
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL. */
export async function terminate(
  pid: number,
  options: { graceMs?: number; signal?: AbortSignal; id?: string } = {},
): Promise<CancelResult> {
  const id = options.id ?? String(pid);
  if (!isAlive(pid)) return { id, outcome: "gone" };
  try {
    process.kill(pid, "SIGTERM");
  } catch (err) {
    return { id, outcome: "failed", detail: (err as Error).message };
  }
  if (await waitGone(pid, options.graceMs ?? 10_000, options.signal)) return { id, outcome: "terminated" };
  try {
    process.kill(pid, "SIGKILL");
  } catch { /* gone meanwhile */ }
  await waitGone(pid, 5_000);
  return { id, outcome: "killed" };
}

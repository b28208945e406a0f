/**
 * The tasks of an agent that dies — even by SIGKILL — must die with it, or a commander that places them
 * again elsewhere would run them twice. One small `awk` process per runner holds the read end of a pipe from
 * the agent and the list of the agent's task process groups; when the pipe closes (the agent is gone) it
 * SIGKILLs the groups still listed. One process per agent instead of `setpriv --pdeathsig` per task, which
 * cost a second exec for every task start.
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { Writable } from "node:stream";

const SCRIPT = `{ if ($1 == "+") g[$2] = 1; else delete g[$2] }
END { s = ""; for (p in g) s = s " -" p; if (s != "") system("kill -s KILL --" s " 2>/dev/null") }`;

/** Tracks process groups to kill if this process dies. */
export interface Reaper {
  add(pgid: number): void;
  remove(pgid: number): void;
  /**
   * Ends the reaper (killing what is still listed); resolves once `awk` has exited, or after `waitMs`, so
   * that an agent that stops leaves no process behind.
   */
  close(waitMs?: number): Promise<void>;
}

/** Starts the reaper; a no-op one when `awk` cannot be started. */
export function startReaper(onError: (err: Error) => void): Reaper {
  let stdin: Writable | undefined;
  let exited: Promise<void> = Promise.resolve();
  try {
    const child = spawn("awk", [SCRIPT], { stdio: ["pipe", "ignore", "ignore"], detached: true });
    child.on("error", (err) => {
      stdin = undefined;
      onError(err);
    });
    exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    child.unref();
    stdin = child.stdin!;
    stdin.on("error", () => (stdin = undefined));
    (stdin as Writable & { unref?: () => void }).unref?.();
  } catch (err) {
    onError(err as Error);
  }
  return {
    add: (pgid) => void stdin?.write(`+ ${pgid}\n`),
    remove: (pgid) => void stdin?.write(`- ${pgid}\n`),
    close: async (waitMs = 2_000) => {
      stdin?.end();
      stdin = undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    },
  };
}

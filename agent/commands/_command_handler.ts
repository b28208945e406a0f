/**
 * Runs an agent's command handler (`shoal agent --command-handler FILE`) for one custom command: the payload
 * on stdin, the reply from stdout. Bounded in every direction: stdout is cut at a size, stderr keeps its tail,
 * a run that outlasts its timeout loses its whole process group (SIGTERM, then SIGKILL), and at most a few
 * runs go at once with a bounded queue behind them. Nothing here throws: every failure is an outcome.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { signal as sendSignal } from "../runner/mod.ts";
import { spawnFailureReason } from "../runner/mod.ts";

/** How one run ended. */
export type HandlerOutcome =
  | { ok: true; stdout: Uint8Array; truncated: boolean }
  | { ok: false; reason: string; stderrTail: string };

/** Options of {@linkcode createCommandHandler}. */
export interface CommandHandlerInit {
  /** The executable (absolute path). */
  file: string;
  /** Longest run (default 30 s). */
  timeoutMs?: number;
  /** Most stdout bytes kept (default 1 MiB). */
  maxStdoutBytes?: number;
  /** Runs at once (default 4). */
  concurrency?: number;
  /** Runs waiting for a turn before new ones are refused (default 256). */
  maxQueued?: number;
  /** Time between SIGTERM and SIGKILL after a timeout (default 2 s). */
  graceMs?: number;
}

/** A command handler shared by every command an agent receives. */
export interface CommandHandler {
  /** Runs the handler with `payload` on stdin and `env` added to the agent's environment. */
  run(
    payload: Uint8Array,
    env: Record<string, string>,
    options?: { signal?: AbortSignal },
  ): Promise<HandlerOutcome>;
  /** Kills running handlers and refuses queued and new runs. */
  close(): void;
}

const STDERR_TAIL_BYTES = 2048;

/** Creates the runner of one command handler file. */
export function createCommandHandler(init: CommandHandlerInit): CommandHandler {
  const timeoutMs = init.timeoutMs ?? 30_000;
  const maxStdout = init.maxStdoutBytes ?? 1024 * 1024;
  const concurrency = init.concurrency ?? 4;
  const maxQueued = init.maxQueued ?? 256;
  const graceMs = init.graceMs ?? 2_000;
  const closing = new AbortController();
  let running = 0;
  const queue: (() => void)[] = [];

  const turn = async (): Promise<boolean> => {
    if (running < concurrency) {
      running++;
      return true;
    }
    if (queue.length >= maxQueued) return false;
    await new Promise<void>((resolve) => queue.push(resolve));
    return !closing.signal.aborted;
  };
  const release = () => {
    const next = queue.shift();
    if (next) next();
    else running--;
  };

  const once = (payload: Uint8Array, env: Record<string, string>, signal: AbortSignal) =>
    new Promise<HandlerOutcome>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(init.file, [], {
          env: { ...process.env, ...env },
          // Its own process group, so that a timeout takes down whatever it started too.
          detached: true,
          stdio: ["pipe", "pipe", "pipe"],
        });
      } catch (err) {
        resolve({ ok: false, reason: spawnFailureReason(init.file, err), stderrTail: "" });
        return;
      }
      const out: Uint8Array[] = [];
      let outBytes = 0;
      let truncated = false;
      let errTail = Buffer.alloc(0);
      let stopped: string | undefined;
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      const stop = (why: string) => {
        if (stopped !== undefined || child.pid === undefined) return;
        stopped = why;
        sendSignal(-child.pid, "SIGTERM");
        killTimer = setTimeout(() => sendSignal(-child.pid!, "SIGKILL"), graceMs);
      };
      const timer = setTimeout(() => stop(`timed out after ${timeoutMs / 1000} s`), timeoutMs);
      const onAbort = () => stop("stopped: the agent is stopping");
      signal.addEventListener("abort", onAbort, { once: true });
      child.stdout!.on("data", (chunk: Buffer) => {
        const room = maxStdout - outBytes;
        if (chunk.byteLength > room) truncated = true;
        if (room <= 0) return;
        const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk;
        out.push(part);
        outBytes += part.byteLength;
      });
      child.stderr!.on("data", (chunk: Buffer) => {
        errTail = Buffer.concat([errTail, chunk]);
        if (errTail.byteLength > STDERR_TAIL_BYTES) errTail = errTail.subarray(-STDERR_TAIL_BYTES);
      });
      // A handler that does not read its stdin must not fail the write (EPIPE).
      child.stdin!.on("error", () => {});
      child.stdin!.end(payload);
      const finish = (outcome: HandlerOutcome) => {
        clearTimeout(timer);
        clearTimeout(killTimer);
        signal.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      child.on("error", (err) => {
        // Not started (ENOENT, EACCES…): no "close" may follow on every runtime.
        if (child.pid === undefined) {
          finish({ ok: false, reason: spawnFailureReason(init.file, err), stderrTail: "" });
        }
      });
      child.on("close", (code, sig) => {
        const stderrTail = errTail.toString("utf8").trimEnd();
        if (stopped !== undefined) {
          finish({ ok: false, reason: `command handler ${stopped}`, stderrTail });
        } else if (code !== 0) {
          const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
          finish({ ok: false, reason: `command handler ${how}`, stderrTail });
        } else finish({ ok: true, stdout: Buffer.concat(out), truncated });
      });
    });

  return {
    async run(payload, env, options = {}) {
      if (closing.signal.aborted) {
        return { ok: false, reason: "the agent is stopping", stderrTail: "" };
      }
      if (!(await turn())) {
        if (closing.signal.aborted) return { ok: false, reason: "the agent is stopping", stderrTail: "" };
        return {
          ok: false,
          reason: `busy: ${concurrency} command handler(s) running and ${queue.length} waiting; try again`,
          stderrTail: "",
        };
      }
      try {
        const signals = [closing.signal, ...(options.signal ? [options.signal] : [])];
        return await once(payload, env, AbortSignal.any(signals));
      } finally {
        release();
      }
    },
    close() {
      closing.abort();
      for (const next of queue.splice(0)) next();
    },
  };
}

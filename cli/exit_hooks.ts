/**
 * What happens when the CLI is cut short: a closed stdout (`shoal demo | head`). By default the process
 * leaves at once (a closed pipe is not an error of ours); a long-running command that owns resources can
 * take the event instead and wind down itself.
 *
 * @module
 */
import { ExitCode } from "./errors.ts";

let handler: (() => void) | undefined;

/** Takes broken-pipe events instead of the default exit; returns a function that gives them back. */
export function onBrokenPipe(fn: () => void): () => void {
  handler = fn;
  return () => {
    if (handler === fn) handler = undefined;
  };
}

/** Handles a broken stdout: the registered command's handler, or exit with `code`. */
export function brokenPipe(code: number): void {
  if (handler) handler();
  else process.exit(code);
}

/**
 * Waits until what was written to stdout and stderr has left the process, then ends both: `process.exit()`
 * drops output still queued for a pipe (a `--json` of 1,000 tasks was cut at the 64 KiB pipe buffer). In
 * Bun only `end()` waits for that (a write callback or 'drain' comes too early). A closed pipe counts as
 * flushed. Call it last, just before `process.exit()`.
 */
export async function flushStdio(): Promise<void> {
  await Promise.all([process.stdout, process.stderr].map((stream) =>
    new Promise<void>((resolve) => {
      if (stream.destroyed || stream.writableEnded) return resolve();
      stream.once("error", () => resolve());
      stream.end(() => resolve());
    })
  ));
}

/**
 * An abort signal for a command that runs until stopped: SIGINT (exit code "interrupted"), SIGTERM, or
 * `timeoutMs` when given. `dispose()` clears the timer; call it when the command ends.
 */
export function untilStopped(timeoutMs: number | undefined): { signal: AbortSignal; dispose(): void } {
  const stop = new AbortController();
  process.once("SIGINT", () => {
    process.exitCode = ExitCode.interrupted;
    stop.abort();
  });
  process.once("SIGTERM", () => stop.abort());
  const timer = timeoutMs !== undefined ? setTimeout(() => stop.abort(), timeoutMs) : undefined;
  return { signal: stop.signal, dispose: () => clearTimeout(timer) };
}

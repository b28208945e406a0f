/**
 * What happens when the CLI is cut short: a closed stdout (`shoal demo | head`). By default the process
 * leaves at once (a closed pipe is not an error of ours); a long-running command that owns resources can
 * take the event instead and wind down itself.
 *
 * @module
 */

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

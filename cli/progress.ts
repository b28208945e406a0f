/**
 * Progress bars on stderr for long operations, silent when stderr is not a terminal or output is JSON.
 *
 * @module
 */
import cliProgress from "cli-progress";

/** A progress bar that may be inert. */
export interface Progress {
  update(value: number, total?: number): void;
  stop(): void;
}

/** Starts a bar labelled `label` out of `total`. */
export function startProgress(label: string, total: number, options: { quiet?: boolean } = {}): Progress {
  if (options.quiet || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {value}/{total} {duration_formatted}`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return {
    update(value, newTotal) {
      if (newTotal !== undefined) bar.setTotal(newTotal);
      bar.update(value);
    },
    stop: () => bar.stop(),
  };
}

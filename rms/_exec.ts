/**
 * Running the system's tools (ssh, sbatch, squeue…) with a deadline, feeding stdin from a string or a
 * file and reading stdout line by line.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";

/** How a tool run ended. */
export interface ExecResult {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the deadline or the abort signal ended it. */
  timedOut: boolean;
  /** Set when the tool could not be started at all (e.g. ENOENT). */
  spawnError?: NodeJS.ErrnoException;
}

/** Options for {@linkcode execTool}. */
export interface ExecOptions {
  /** Text written to stdin, or `{ file }` streamed to stdin. */
  input?: string | { file: string };
  timeoutMs?: number;
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
  /** Called for each complete stdout line as it arrives. */
  onLine?: (line: string) => void;
}

/** Runs `command args…` to completion (or the deadline, then SIGKILL). Never rejects. */
export function execTool(command: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    let stdout = "";
    let stderr = "";
    let partial = "";
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    const kill = () => {
      timedOut = true;
      child.kill("SIGKILL");
    };
    const timer = options.timeoutMs !== undefined ? setTimeout(kill, options.timeoutMs) : undefined;
    options.signal?.addEventListener("abort", kill, { once: true });
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (!options.onLine) return;
      const lines = (partial + d).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) options.onLine(l);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (stderr.length > 65_536) stderr = stderr.slice(-32_768);
    });
    child.stdin.on("error", () => {}); // the tool may exit before reading all of stdin
    if (typeof options.input === "string") child.stdin.end(options.input);
    else if (options.input) {
      const src = createReadStream(options.input.file);
      src.on("error", (err) => {
        stderr += `cannot read ${
          options.input && typeof options.input !== "string" ? options.input.file : ""
        }: ${err.message}\n`;
        child.kill("SIGKILL");
      });
      src.pipe(child.stdin);
    } else child.stdin.end();
    child.on("error", (err) => (spawnError = err as NodeJS.ErrnoException));
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", kill);
      if (partial && options.onLine) options.onLine(partial);
      resolve({ code, stdout, stderr, timedOut, ...(spawnError ? { spawnError } : {}) });
    });
  });
}

/** The last meaningful line of a tool's stderr, for one-line error reports. */
export function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) =>
    l && !/^Warning: Permanently added/.test(l) && !l.startsWith("@@shoal:")
  );
  return lines.at(-1) ?? "";
}

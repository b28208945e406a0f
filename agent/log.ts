/**
 * The agent's log: one line per record, to a file and to stderr.
 *
 * @module
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

/** Severity of a log record. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger: `log.info("message", { field: value })`. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerInit {
  /** Append records to this file (created with its directory). */
  file?: string;
  /** Also write to stderr (default true). */
  stderr?: boolean;
  /** Lowest level written (default "info"). */
  level?: LogLevel;
}

function format(level: LogLevel, message: string, fields?: Record<string, unknown>): string {
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
  for (const [k, v] of Object.entries(fields ?? {})) {
    const text = typeof v === "string" ? v : v instanceof Error ? v.message : JSON.stringify(v);
    line += ` ${k}=${/\s/.test(text ?? "") ? JSON.stringify(text) : text}`;
  }
  return line + "\n";
}

/** Creates a logger. Writes are synchronous so that nothing is lost when the process exits. */
export function createLogger(init: LoggerInit = {}): Logger {
  const min = ORDER[init.level ?? "info"];
  if (init.file) mkdirSync(dirname(init.file), { recursive: true });
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const line = format(level, message, fields);
    if (init.file) {
      try {
        appendFileSync(init.file, line);
      } catch { /* a full disk must not take the agent down */ }
    }
    if (init.stderr ?? true) process.stderr.write(line);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

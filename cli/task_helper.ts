/**
 * The `shoal` binary as a task's helper (`shoal kv`, `cmd`, `coll`, `env` inside a task): is this process a
 * task, and the task client's errors as CLI errors.
 *
 * @module
 */
import process from "node:process";
import { AccessDeniedError, UnauthorizedError, ValueTooLargeError, WaitTimeoutError } from "../client/mod.ts";
import { CliError, DeadlineError, ExitCode } from "./errors.ts";

/** True when this process runs as a shoal task. */
export function inTask(): boolean {
  return Boolean(process.env.SHOAL_TASK_TOKEN && process.env.SHOAL_SOCKET);
}

/** Maps task-client errors to CLI errors (exit codes). */
export async function asCli<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WaitTimeoutError) throw new DeadlineError(err.message, { cause: err });
    if (err instanceof AccessDeniedError || err instanceof UnauthorizedError) {
      throw new CliError(err.message, ExitCode.failure, { cause: err });
    }
    if (err instanceof ValueTooLargeError) throw new CliError(err.message, ExitCode.usage, { cause: err });
    throw err;
  }
}

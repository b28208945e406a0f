/**
 * `[path-regex]` of `shoal ps` and `shoal logs`.
 *
 * @module
 */
import { CliError, ExitCode } from "./errors.ts";

/** Parses a user regex with a clear error. */
export function pathRegex(text: string | undefined): RegExp {
  try {
    return new RegExp(text ?? "");
  } catch (err) {
    throw new CliError(`Invalid path regex "${text}": ${(err as Error).message}`, ExitCode.usage);
  }
}

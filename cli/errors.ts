/**
 * CLI errors and the exit codes they map to.
 *
 * @module
 */

/** Exit codes of `shoal`; documented in `shoal --help`. */
export const ExitCode = {
  ok: 0,
  /** The operation ran and failed (e.g. a topology has errors). */
  failure: 1,
  /** Bad command line. */
  usage: 2,
  /** The session does not exist or none of its agents runs. */
  noSession: 3,
  /** The mesh could not be reached. */
  unreachable: 4,
  /** A deadline passed. */
  timeout: 5,
  /** The result is printed but partial: some agents alive in the view did not answer (named on stderr). */
  partial: 6,
  interrupted: 130,
} as const;

/** An error the CLI reports with a given exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.failure, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** The named session does not exist or is not up. */
export class SessionNotFoundError extends CliError {
  readonly session: string;
  constructor(session: string, message: string, options?: ErrorOptions) {
    super(message, ExitCode.noSession, options);
    this.name = "SessionNotFoundError";
    this.session = session;
  }
}

/** No agent of the session answered. */
export class MeshUnreachableError extends CliError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.unreachable, options);
    this.name = "MeshUnreachableError";
  }
}

/** A wait ran past its deadline. */
export class DeadlineError extends CliError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.timeout, options);
    this.name = "DeadlineError";
  }
}

/**
 * Errors of the RMS plug-ins.
 *
 * @module
 */
import type { AgentFailure } from "./types.ts";

/** An agent could not be started. */
export class AgentStartError extends Error {
  readonly host: string;
  readonly detail: string;
  constructor(host: string, message: string, detail = "", options?: ErrorOptions) {
    super(message + (detail ? `\n${detail}` : ""), options);
    this.name = "AgentStartError";
    this.host = host;
    this.detail = detail;
  }
}

/** A pilot stopped at one of its steps (or could not be run: step "connect"); `reason` says why. */
export class PilotStepError extends Error {
  /** The step's name, as the pilot reported it (`shoal pilot show` lists them). */
  readonly step: string;
  readonly reason: string;
  constructor(step: string, reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "PilotStepError";
    this.step = step;
    this.reason = reason;
  }
}

/** Too few agents of a submission started; `failures` says which and why. */
export class SubmitError extends Error {
  readonly failures: AgentFailure[];
  constructor(message: string, failures: AgentFailure[], options?: ErrorOptions) {
    super(message, options);
    this.name = "SubmitError";
    this.failures = failures;
  }
}

/** A plug-in's configuration is wrong; `file` (may be empty) and `line` point at the mistake when known. */
export class RmsConfigError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  constructor(file: string, message: string, options?: ErrorOptions & { line?: number }) {
    super(file ? `${file}${options?.line ? `:${options.line}` : ""}: ${message}` : message, options);
    this.name = "RmsConfigError";
    this.file = file;
    this.line = options?.line;
  }
}

/** A tool the plug-in needs (ssh, sbatch, …) is not installed here. */
export class RmsToolMissingError extends Error {
  readonly tool: string;
  constructor(tool: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RmsToolMissingError";
    this.tool = tool;
  }
}

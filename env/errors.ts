/**
 * Errors of environments that callers catch.
 *
 * @module
 */
import type { EnvEvent, EnvState } from "./types.ts";

/** An environment file that cannot be used; `file` names it. */
export class EnvFileError extends Error {
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EnvFileError";
    this.file = file;
  }
}

/** An event the environment's state does not allow; `allowed` lists those it does. */
export class EnvEventRefusedError extends Error {
  readonly state: EnvState;
  readonly event: string;
  readonly allowed: EnvEvent[];
  constructor(id: string, state: EnvState, event: string, allowed: EnvEvent[], options?: ErrorOptions) {
    super(
      `Event "${event}" is not allowed in state ${state} of environment "${id}"; allowed: ${
        allowed.length ? allowed.join(", ") : "none (DONE is final; destroy it)"
      }`,
      options,
    );
    this.name = "EnvEventRefusedError";
    this.state = state;
    this.event = event;
    this.allowed = allowed;
  }
}

/** Another controller holds (or took) the environment: its epoch moved on. */
export class EnvConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EnvConflictError";
  }
}

/** A transition ran and failed; the environment's state says where it ended. */
export class EnvTransitionError extends Error {
  readonly state: EnvState;
  constructor(message: string, state: EnvState, options?: ErrorOptions) {
    super(message, options);
    this.name = "EnvTransitionError";
    this.state = state;
  }
}

/** No environment of that ID. */
export class EnvNotFoundError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EnvNotFoundError";
  }
}

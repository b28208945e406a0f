/**
 * Errors of the task client. Compare by class or `.name`.
 *
 * @module
 */

/** The agent refused or failed a request; `status` is the HTTP status. */
export class TaskApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TaskApiError";
    this.status = status;
  }
}

/** The task may not do this with this property (DDS access rules). */
export class AccessDeniedError extends TaskApiError {
  constructor(message: string, options?: ErrorOptions) {
    super(403, message, options);
    this.name = "AccessDeniedError";
  }
}

/** The token is missing, forged or of a task that ended. */
export class UnauthorizedError extends TaskApiError {
  constructor(message: string, options?: ErrorOptions) {
    super(401, message, options);
    this.name = "UnauthorizedError";
  }
}

/** A wait ran past its timeout. */
export class WaitTimeoutError extends TaskApiError {
  constructor(message: string, options?: ErrorOptions) {
    super(408, message, options);
    this.name = "WaitTimeoutError";
  }
}

/** A value or payload is larger than the agent accepts. */
export class ValueTooLargeError extends TaskApiError {
  constructor(message: string, options?: ErrorOptions) {
    super(413, message, options);
    this.name = "ValueTooLargeError";
  }
}

/** The error class for an HTTP status. */
export function errorFor(status: number, _name: string, message: string): TaskApiError {
  if (status === 401) return new UnauthorizedError(message);
  if (status === 403) return new AccessDeniedError(message);
  if (status === 408) return new WaitTimeoutError(message);
  if (status === 413) return new ValueTooLargeError(message);
  return new TaskApiError(status, message);
}

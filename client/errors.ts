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

/** A collective's generation failed (a member crashed, an agent died, a timeout); `missing` names who. */
export class CollectiveFailedError extends TaskApiError {
  readonly generation: number;
  readonly reason: string;
  /** Members that had not contributed (the first ones, when many). */
  readonly missing: readonly string[];
  readonly missingCount: number;
  constructor(
    message: string,
    details: { generation?: number; reason?: string; missing?: string[]; missingCount?: number },
    options?: ErrorOptions,
  ) {
    super(409, message, options);
    this.name = "CollectiveFailedError";
    this.generation = details.generation ?? 0;
    this.reason = details.reason ?? message;
    this.missing = details.missing ?? [];
    this.missingCount = details.missingCount ?? this.missing.length;
  }
}

/** The error class for an HTTP status (and the error body's `name` and details). */
export function errorFor(
  status: number,
  name: string,
  message: string,
  details: Record<string, unknown> = {},
): TaskApiError {
  if (name === "CollectiveFailedError") return new CollectiveFailedError(message, details);
  if (status === 401) return new UnauthorizedError(message);
  if (status === 403) return new AccessDeniedError(message);
  if (status === 408) return new WaitTimeoutError(message);
  if (status === 413) return new ValueTooLargeError(message);
  return new TaskApiError(status, message);
}

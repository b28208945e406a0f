/**
 * Errors of the pool.
 *
 * @module
 */

/** The pool refused a request (already queued, not queued, …); the message says why and what to do. */
export class PoolError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolError";
  }
}

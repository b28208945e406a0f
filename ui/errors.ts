/**
 * Errors of the dashboard.
 *
 * @module
 */

/** The dashboard could not listen where it was told to. */
export class UiListenError extends Error {
  /** The `host:port` it was given. */
  readonly listen: string;

  constructor(listen: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UiListenError";
    this.listen = listen;
  }
}

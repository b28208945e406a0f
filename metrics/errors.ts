/**
 * Errors of the metrics area.
 *
 * @module
 */

/** The metrics endpoint could not listen where it was told to. */
export class MetricsListenError extends Error {
  /** The `host:port` it was given. */
  readonly listen: string;

  constructor(listen: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MetricsListenError";
    this.listen = listen;
  }
}

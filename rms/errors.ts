/**
 * Errors of the RMS plug-ins.
 *
 * @module
 */

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

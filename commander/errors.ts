/**
 * Errors raised by the commander. Callers compare by class.
 *
 * @module
 */
import type { PlacedTask } from "./commander.ts";

/** A commander operation could not be carried out; `placed` lists what had started before it failed. */
export class CommanderError extends Error {
  /** Tasks started (and leased) before the failure, with the agent each runs on: the caller stops them. */
  readonly placed: readonly PlacedTask[];
  constructor(message: string, placed: readonly PlacedTask[] = [], options?: ErrorOptions) {
    super(message, options);
    this.name = "CommanderError";
    this.placed = placed;
  }
}

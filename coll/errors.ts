/**
 * Errors of collectives. Compare by class or `.name`.
 *
 * @module
 */

/** A generation ended without completing: a member crashed, an agent died, or it timed out. */
export class CollectiveFailedError extends Error {
  readonly collective: string;
  readonly generation: number;
  /** Members that had not contributed (the first ones, when many). */
  readonly missing: readonly string[];
  /** How many members had not contributed. */
  readonly missingCount: number;
  readonly reason: string;
  constructor(
    init: { collective: string; generation: number; reason: string; missing: string[]; missingCount: number },
    options?: ErrorOptions,
  ) {
    const more = init.missingCount > init.missing.length
      ? ` and ${init.missingCount - init.missing.length} more`
      : "";
    const named = init.missingCount > 0 ? `; missing: ${init.missing.join(", ")}${more}` : "";
    super(
      `Collective "${init.collective}" generation ${init.generation} failed: ${init.reason}${named}`,
      options,
    );
    this.name = "CollectiveFailedError";
    this.collective = init.collective;
    this.generation = init.generation;
    this.missing = init.missing;
    this.missingCount = init.missingCount;
    this.reason = init.reason;
  }
}

/** Members of one generation asked for different things (operation, reduction, root or fan-out). */
export class CollectiveMismatchError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CollectiveMismatchError";
  }
}

/** The group names no task, or the caller is not in it, or the topology is unknown here. */
export class CollectiveGroupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CollectiveGroupError";
  }
}

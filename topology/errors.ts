/**
 * Errors of the topology area.
 *
 * @module
 */
import type { TopologyIssue } from "./types.ts";

/**
 * A topology was refused. `issues` lists every problem found in the file (not just the first); `file`, `line`
 * and `column` are those of the first issue.
 */
export class TopologyValidationError extends Error {
  /** Every problem found, in file order. */
  readonly issues: TopologyIssue[];
  readonly file: string;
  readonly line: number;
  readonly column: number;

  constructor(issues: TopologyIssue[], options?: ErrorOptions) {
    const first = issues[0];
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
    super(
      first ? `${first.file}:${first.line}:${first.column}: ${first.message}${more}` : "Topology is invalid",
      options,
    );
    this.name = "TopologyValidationError";
    this.issues = issues;
    this.file = first?.file ?? "";
    this.line = first?.line ?? 0;
    this.column = first?.column ?? 0;
  }
}

/** A topology file could not be read (missing, unreadable, a directory). */
export class TopologyFileError extends Error {
  readonly file: string;

  constructor(file: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TopologyFileError";
    this.file = file;
  }
}

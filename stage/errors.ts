/**
 * Errors of staging. Callers compare by class or `.name`.
 *
 * @module
 */

/** A path given to stage cannot be staged (missing, a symbolic link inside, a bad name). */
export class StageInputError extends Error {
  readonly path: string;
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`Cannot stage "${path}": ${reason}`, options);
    this.name = "StageInputError";
    this.path = path;
  }
}

/** A chunk's bytes did not match its SHA-256 in the manifest. */
export class ChunkCorruptError extends Error {
  readonly peer: string;
  readonly piece: number;
  constructor(peer: string, piece: number, options?: ErrorOptions) {
    super(`Chunk ${piece} from peer "${peer}" failed SHA-256 verification; fetching it elsewhere`, options);
    this.name = "ChunkCorruptError";
    this.peer = peer;
    this.piece = piece;
  }
}

/** No reachable peer held some pieces for too long: the pull stops, keeping what it has (resumable). */
export class NoHolderError extends Error {
  readonly missing: number;
  constructor(name: string, missing: number, waitedMs: number, options?: ErrorOptions) {
    super(
      `No reachable peer holds ${missing} missing chunk(s) of "${name}" (waited ${
        Math.round(waitedMs / 1000)
      } s); what arrived is kept, so \`shoal stage put\` again resumes`,
      options,
    );
    this.name = "NoHolderError";
    this.missing = missing;
  }
}

/** The agent's stage cache cannot hold a staged name even after evicting every other one. */
export class StageCacheFullError extends Error {
  readonly needed: number;
  readonly limit: number;
  constructor(name: string, needed: number, limit: number, options?: ErrorOptions) {
    super(
      `"${name}" needs ${needed} bytes but the stage cache holds at most ${limit}; raise --stage-cache-max`,
      options,
    );
    this.name = "StageCacheFullError";
    this.needed = needed;
    this.limit = limit;
  }
}

/** A staged name that this agent does not hold. */
export class UnknownStageError extends Error {
  readonly stageName: string;
  constructor(name: string, options?: ErrorOptions) {
    super(`Nothing is staged as "${name}" on this agent; see \`shoal stage ls\``, options);
    this.name = "UnknownStageError";
    this.stageName = name;
  }
}

/** A staged name a task declares (`$SHOAL_STAGE/<name>`) that no alive agent holds complete. */
export class UnheldStageError extends Error {
  readonly stageName: string;
  constructor(name: string, options?: ErrorOptions) {
    super(
      `Staged name "${name}" is held by no agent; run \`shoal stage put <path> --name ${name}\` first`,
      options,
    );
    this.name = "UnheldStageError";
    this.stageName = name;
  }
}

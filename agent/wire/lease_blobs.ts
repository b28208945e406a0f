/**
 * Shipped files travel once per lease, not once per task: a `reachable="false"` executable of 10 MB used by
 * 250 tasks on one agent would otherwise make a 2.5 GB lease request (and exceed its size limit). Large
 * binary file contents are moved into the request's `blobs` and each task's file refers to one by index;
 * the agent puts the shared bytes back before it starts the tasks. Contents the commander staged on the
 * agent first (`lease_staging.ts`) travel as a reference only (`staged`), and the agent links them from its
 * content cache.
 *
 * @module
 */
import type { TaskFile, TaskSpec } from "./types.ts";

/** Contents from this many bytes on are shared through `blobs`. */
const SHARE_FROM = 1024;

/** A file as a lease request carries it: its content inline, or the index of a blob. */
export interface LeaseFile {
  name: string;
  content?: Uint8Array | string;
  blob?: number;
  /** Content staged on the agent beforehand: its chunk-list ID and size. */
  staged?: StagedRef;
  /** A staged name, linked in once present (`TaskFile.stage`). */
  stage?: string;
  mode?: number;
}

/** A content staged on the agent (`stage/`), by chunk-list ID. */
export interface StagedRef {
  id: string;
  size: number;
}

/** Task specs whose files may refer to blobs. */
export type LeaseTask = Omit<TaskSpec, "files"> & { files?: LeaseFile[] };

/**
 * Moves large binary contents of `specs` into `blobs`, each distinct content (by identity) once; contents
 * found in `staged` (already on the agent) become references instead.
 */
export function packBlobs(
  specs: readonly TaskSpec[],
  staged?: ReadonlyMap<Uint8Array, StagedRef>,
): { tasks: LeaseTask[]; blobs?: Uint8Array[] } {
  const index = new Map<Uint8Array, number>();
  const blobs: Uint8Array[] = [];
  const tasks = specs.map((spec): LeaseTask => {
    if (!spec.files?.length) return spec;
    return {
      ...spec,
      files: spec.files.map((f): LeaseFile => {
        if (f.stage !== undefined) return { name: f.name, stage: f.stage };
        if (typeof f.content === "string" || f.content.byteLength < SHARE_FROM) return f;
        const ref = staged?.get(f.content);
        if (ref) {
          const { content: _, ...rest } = f;
          return { ...rest, staged: ref };
        }
        let i = index.get(f.content);
        if (i === undefined) {
          i = blobs.push(f.content) - 1;
          index.set(f.content, i);
        }
        const { content: _, ...rest } = f;
        return { ...rest, blob: i };
      }),
    };
  });
  return blobs.length ? { tasks, blobs } : { tasks };
}

/**
 * Puts blob contents back into the files of `tasks`, and staged references as links to the local file
 * `staged(ref, mode)` names; throws `RangeError` on a reference to no blob or to content not staged here.
 */
export function unpackBlobs<T extends { path: string; files?: LeaseFile[] }>(
  tasks: readonly T[],
  blobs: readonly Uint8Array[] = [],
  staged?: (ref: StagedRef, mode: number) => string | undefined,
): (Omit<T, "files"> & { files?: TaskFile[] })[] {
  return tasks.map((t) => {
    if (!t.files?.length) return t as Omit<T, "files">;
    return {
      ...t,
      files: t.files.map((f): TaskFile => {
        const mode = f.mode !== undefined ? { mode: f.mode } : {};
        if (f.stage !== undefined) return { name: f.name, content: "", stage: f.stage };
        if (f.staged) {
          const link = staged?.(f.staged, f.mode ?? 0o644);
          if (link === undefined) {
            throw new RangeError(
              `File "${f.name}" of task "${t.path}" refers to staged content ${f.staged.id}, which this agent does not hold`,
            );
          }
          return { name: f.name, content: "", link, ...mode };
        }
        const content = f.blob === undefined ? f.content : blobs[f.blob];
        if (content === undefined) {
          throw new RangeError(
            f.blob === undefined
              ? `File "${f.name}" of task "${t.path}" has no content`
              : `File "${f.name}" of task "${t.path}" refers to blob ${f.blob}, but the lease carries ${blobs.length}`,
          );
        }
        return { name: f.name, content, ...(f.mode !== undefined ? { mode: f.mode } : {}) };
      }),
    };
  });
}

/**
 * Contracts of the agent area: what a runner is asked to run, and what it reports.
 *
 * @module
 */
import type * as v from "valibot";
import type { TaskStateSchema } from "./protocols.ts";

/** A file written into a task's sandbox before it starts (DDS assets, shipped executables). */
export interface TaskFile {
  /** Path relative to the sandbox directory; no `..`. */
  name: string;
  content: Uint8Array | string;
  /** File mode, e.g. 0o755 for a shipped executable (default 0o644). */
  mode?: number;
  /**
   * A file on this agent to hard-link instead of writing `content` (staged content in the agent's cache,
   * read-only): how large shipped files arrive since they travel by staging (`lease_staging.ts`). A
   * directory is recreated with hard links to its files.
   */
  link?: string;
  /**
   * A staged name (a DDS asset whose value is `$SHOAL_STAGE/<name>`): the agent makes it present, then
   * links it here as `link`; `content` is unused.
   */
  stage?: string;
}

/** One runtime task as the commander hands it to an agent. */
export interface TaskSpec {
  /** The active topology this task belongs to. */
  topologyId: string;
  /** DDS runtime path, e.g. `main/group1/collection1_3/task1_0`. */
  path: string;
  /** DDS task ID (decimal string of the 64-bit ID). */
  id: string;
  /** Declared task name (`DDS_TASK_NAME`). */
  name: string;
  /** `DDS_TASK_INDEX`. */
  index: number;
  /** `DDS_COLLECTION_NAME`, when in a collection. */
  collectionName?: string;
  /** `DDS_COLLECTION_INDEX`, when in a collection. */
  collectionIndex?: number;
  /** `DDS_GROUP_NAME` (`main` when in no group). */
  groupName: string;
  /** The resolved command line (DDS `exe`): run directly, or through `/bin/sh -c` when it needs a shell. */
  exe: string;
  /** DDS `env`: a script sourced by `/bin/sh` before `exe` (its text or a path, see `envIsFile`). */
  env?: string;
  /** Files to write into the sandbox (assets; executables shipped because they were not reachable). */
  files?: TaskFile[];
  /** Restarts allowed after a crash (DDS `TaskCrashed`/`RestartTask` trigger `arg`); 0 = none. */
  maxRestarts: number;
  /** `DDS_SLOT_ID`. */
  slotId: string;
  /** `DDS_SESSION_ID`. */
  sessionId: string;
  /** More environment variables (`SHOAL_*`). */
  extraEnv?: Record<string, string>;
  /** Properties the task declared, with access and scope (key-value rules of the task API). */
  properties?: TaskProperty[];
  /** Runtime path of the enclosing collection instance, when in a collection (`collection` scope). */
  collectionPath?: string;
}

/** A property as a task declared it. */
export interface TaskProperty {
  name: string;
  access: "read" | "write" | "readwrite";
  scope: "global" | "collection";
}

/** Lifecycle of a task on its agent. */
export type TaskState = v.InferOutput<typeof TaskStateSchema>;

/** What an agent knows about one of its tasks. */
export interface TaskStatus {
  topologyId: string;
  path: string;
  id: string;
  state: TaskState;
  pid?: number;
  /** Restarts done so far. */
  restarts: number;
  /** Wall-clock ms of the current (or last) start. */
  startedAt?: number;
  /** Set once exited. */
  exitCode?: number | null;
  signal?: string | null;
  /** Why it failed to start or was given up on, for people. */
  reason?: string;
  /** Log files of the current (or last) run. */
  stdoutFile?: string;
  stderrFile?: string;
}

export type { RunnerEvent } from "./events.ts";

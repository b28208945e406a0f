/**
 * Errors raised by the agent area. Callers compare by class or `.name`.
 *
 * @module
 */
/** A task with the same topology and path is already running on this runner. */
export class TaskAlreadyRunningError extends Error {
  readonly topologyId: string;
  readonly path: string;
  constructor(topologyId: string, path: string, options?: ErrorOptions) {
    super(`Task "${path}" of topology "${topologyId}" is already running; stop it first`, options);
    this.name = "TaskAlreadyRunningError";
    this.topologyId = topologyId;
    this.path = path;
  }
}

/** A file of a task spec would land outside the task's sandbox (absolute path or `..`). */
export class TaskFileError extends Error {
  /** The offending file name, as given in the spec. */
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super(`Task file "${file}": ${message}`, options);
    this.name = "TaskFileError";
    this.file = file;
  }
}

/** The runner was disposed; it starts no more tasks. */
export class RunnerClosedError extends Error {
  constructor(options?: ErrorOptions) {
    super("The task runner is closed; create a new one to start tasks", options);
    this.name = "RunnerClosedError";
  }
}

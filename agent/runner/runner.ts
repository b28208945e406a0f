/**
 * The task runner of an agent: starts tasks in their sandboxes, watches them (restart on crash up to the
 * spec's limit) and stops whole process trees.
 *
 * @example
 * ```ts
 * await using runner = createTaskRunner({ workDir: "/tmp/shoal", log: createLogger() });
 * runner.events.on((e) => console.log(e.type, e.path));
 * const status = await runner.start(spec);
 * if (status.state === "failed") console.error(status.reason);
 * await runner.stop({ topologyId: spec.topologyId });
 * ```
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { EventHub } from "../../mesh/mod.ts";
import { commandFor } from "./_command_line.ts";
import { ContentCache } from "./_content_cache.ts";
import { checkNames, logDir, logFiles, prepareSandbox, sandboxDir } from "./_sandbox.ts";
import { closeFds, executableProblem, openLogs, spawnFailureReason, spawnTask } from "./_spawn.ts";
import { SANDBOX_VAR, snapshotEnv, taskEnv } from "./_task_env.ts";
import { startReaper } from "./_reaper.ts";
import { terminateTrees } from "./_terminate.ts";
import type { TerminateResult } from "./_terminate.ts";
import { RunnerClosedError, TaskAlreadyRunningError, TaskFileError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { RunnerEvent, TaskSpec, TaskStatus } from "../wire/mod.ts";

/** Collaborators and settings of {@linkcode createTaskRunner}. */
export interface TaskRunnerInit {
  /** Holds `tasks/<topologyId>/<path>/` sandboxes and `logs/<topologyId>/` task logs. */
  workDir: string;
  log: Logger;
  /** Time between SIGTERM and SIGKILL when stopping (default 5000 ms, as DDS). */
  graceMs?: number;
  /** Shell for lines that need one (default `/bin/sh`). */
  shell?: string;
  /** Variables every task gets (e.g. `SHOAL_STAGE`); a spec's `extraEnv` may override them. */
  env?: Record<string, string>;
}

/** Selects tasks: all of a topology, and/or given paths. An empty filter selects every task. */
export interface TaskFilter {
  topologyId?: string;
  paths?: string[];
}

/** Options of {@linkcode TaskRunner.stop}. */
export interface StopOptions {
  /** Overrides the runner's grace period. */
  graceMs?: number;
  /** Stops waiting (the processes are still terminated in the background). */
  signal?: AbortSignal;
}

/** Outcome of a stop: tasks stopped, and how many of them needed SIGKILL. */
export interface StopResult {
  stopped: number;
  killed: number;
}

/** Options of {@linkcode TaskRunner.start}. */
export interface StartOptions {
  signal?: AbortSignal;
  /**
   * The task is prepared only once this settles (it is `starting` meanwhile; a stop ends the wait): a
   * staged name it declares being pulled. A rejection fails the task with the error's message.
   */
  before?: Promise<unknown>;
}

/** Runs the tasks of one agent. Create with {@linkcode createTaskRunner}. */
export interface TaskRunner extends AsyncDisposable {
  /** `task:started`, `task:exited` and `task:failed`, as they happen. */
  readonly events: EventHub<RunnerEvent>;
  /**
   * Starts a task; resolves once its process is spawned, or with state `failed` and a `reason` when it
   * could not start. Throws {@linkcode TaskAlreadyRunningError} when that topology and path run already,
   * {@linkcode RunnerClosedError} after disposal, `TypeError` for unusable IDs or paths.
   */
  start(spec: TaskSpec, options?: StartOptions): Promise<TaskStatus>;
  /** SIGTERM to each selected task's whole tree, SIGKILL after the grace period; resolves once all are gone. */
  stop(filter: TaskFilter, options?: StopOptions): Promise<StopResult>;
  /** Stops every task. */
  stopAll(options?: StopOptions): Promise<StopResult>;
  /** Status of the selected tasks, running or not (until forgotten). */
  list(filter?: TaskFilter): TaskStatus[];
  get(topologyId: string, path: string): TaskStatus | undefined;
  /** Drops the records of selected tasks that no longer run; returns how many. */
  forget(filter?: TaskFilter): number;
}

interface Task {
  spec: TaskSpec;
  status: TaskStatus;
  sandbox: string;
  command: { file: string; args: string[] };
  env: Record<string, string>;
  child?: ChildProcess;
  exited: boolean;
  stopRequested: boolean;
  stopping?: Promise<TerminateResult>;
  /** Set while a run is being prepared and spawned. */
  starting?: Promise<void>;
  /** Ends the wait for {@linkcode StartOptions.before} when the task is stopped. */
  cancel?: AbortController;
}

const BUSY = new Set(["starting", "running", "restarting"]);
const key = (topologyId: string, path: string) => `${topologyId}\0${path}`;

function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

class Runner implements TaskRunner {
  readonly events: EventHub<RunnerEvent> = new EventHub();
  readonly #tasks = new Map<string, Task>();
  readonly #workDir: string;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #shell: string;
  readonly #baseEnv: Record<string, string>;
  readonly #dirs = new Map<string, Promise<void>>();
  readonly #reaper: ReturnType<typeof startReaper>;
  #closed = false;
  #disposed?: Promise<void>;
  readonly #cache: ContentCache;

  constructor(init: TaskRunnerInit) {
    this.#workDir = init.workDir;
    this.#log = init.log;
    this.#graceMs = init.graceMs ?? 5_000;
    this.#shell = init.shell ?? "/bin/sh";
    this.#baseEnv = { ...snapshotEnv(), ...init.env };
    this.#cache = new ContentCache(join(init.workDir, "cache"));
    this.#reaper = startReaper((err) =>
      this.#log.warn("no reaper: tasks may outlive a killed agent", { err })
    );
  }

  async start(spec: TaskSpec, options: StartOptions = {}): Promise<TaskStatus> {
    if (this.#closed) throw new RunnerClosedError();
    options.signal?.throwIfAborted();
    const { topologyId, path, id } = spec;
    checkNames(topologyId, path);
    const old = this.#tasks.get(key(topologyId, path));
    if (old && (BUSY.has(old.status.state) || old.stopping || old.starting)) {
      throw new TaskAlreadyRunningError(topologyId, path);
    }
    const task: Task = {
      spec,
      status: { topologyId, path, id, state: "starting", restarts: 0 },
      sandbox: sandboxDir(this.#workDir, topologyId, path),
      command: { file: "", args: [] },
      env: {},
      exited: true,
      stopRequested: false,
      ...(options.before ? { cancel: new AbortController() } : {}),
    };
    this.#tasks.set(key(topologyId, path), task);
    await this.#track(
      task,
      this.#prepare(task, options.before).then((ok) => ok ? this.#launch(task, options.signal) : undefined),
    );
    if (task.status.state === "stopped") options.signal?.throwIfAborted();
    return { ...task.status };
  }

  /** Keeps `task.starting` set while `work` runs, so that stop() waits for it. */
  #track(task: Task, work: Promise<unknown>): Promise<void> {
    const p: Promise<void> = work.then(() => undefined).finally(() => {
      if (task.starting === p) delete task.starting;
    });
    task.starting = p;
    return p;
  }

  /** Creates a directory once per runner (the parents shared by many tasks). */
  #ensureDir(dir: string): Promise<void> {
    let p = this.#dirs.get(dir);
    if (!p) {
      p = mkdir(dir, { recursive: true }).then(() => undefined);
      p.catch(() => this.#dirs.delete(dir));
      this.#dirs.set(dir, p);
    }
    return p;
  }

  /** Sandbox, files, env script, command line and environment; false (and failed) when that went wrong. */
  async #prepare(task: Task, before?: Promise<unknown>): Promise<boolean> {
    if (before) {
      try {
        await abortable(before, task.cancel!.signal);
      } catch (err) {
        if (task.stopRequested) {
          Object.assign(task.status, { state: "stopped", reason: "Stopped before it started" });
        } else this.#fail(task, err instanceof Error ? err.message : String(err));
        return false;
      } finally {
        delete task.cancel;
      }
    }
    const { spec, sandbox } = task;
    let envFile: string | undefined;
    try {
      await this.#ensureDir(dirname(sandbox));
      envFile = await prepareSandbox(sandbox, spec.files, spec.env, this.#cache);
    } catch (err) {
      this.#fail(
        task,
        err instanceof TaskFileError ? err.message : `Cannot prepare sandbox "${sandbox}": ${err}`,
      );
      return false;
    }
    if (spec.exe.trim() === "") {
      this.#fail(task, `Empty command line (exe) for task "${spec.path}"`);
      return false;
    }
    const shell = this.#shell;
    task.command = commandFor(spec.exe, envFile === undefined ? { shell } : { shell, envFile });
    task.env = taskEnv(this.#baseEnv, spec, sandbox);
    return true;
  }

  /** Opens fresh log files and spawns one run; fails the task when it could not start. */
  async #launch(task: Task, signal?: AbortSignal): Promise<void> {
    const { status, spec } = task;
    const { topologyId, path, id } = spec;
    const startedAt = Date.now();
    const dir = logDir(this.#workDir, topologyId);
    const logs = logFiles(dir, path, startedAt);
    let fds: [number, number];
    try {
      await this.#ensureDir(dir);
      fds = await openLogs(logs.out, logs.err);
    } catch (err) {
      this.#fail(task, `Cannot open log file "${logs.out}": ${err}`);
      return;
    }
    if (task.stopRequested || this.#closed || signal?.aborted) {
      closeFds(fds);
      Object.assign(status, { state: "stopped", reason: "Stopped before it started" });
      return;
    }
    const { file, args } = task.command;
    const problem = executableProblem(file, task.sandbox, task.env.PATH);
    if (problem) {
      closeFds(fds);
      this.#fail(task, problem);
      return;
    }
    const child = spawnTask({ file, args, cwd: task.sandbox, env: task.env }, fds);
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise((resolve) => child.once("error", resolve));
      this.#fail(task, spawnFailureReason(file, err));
      return;
    }
    child.on("error", (err) => this.#log.warn("task process error", { path, err }));
    this.#reaper.add(pid);
    child.once("exit", (code, signal) => this.#onExit(task, child, code, signal));
    task.child = child;
    task.exited = false;
    Object.assign(status, { state: "running", pid, startedAt, stdoutFile: logs.out, stderrFile: logs.err });
    delete status.exitCode;
    delete status.signal;
    this.events.emit({
      type: "task:started",
      topologyId,
      path,
      id,
      pid,
      restarts: status.restarts,
      at: startedAt,
    });
    this.#log.debug("task started", { topology: topologyId, path, pid });
  }

  #onExit(task: Task, child: ChildProcess, code: number | null, signal: string | null): void {
    this.#reaper.remove(child.pid!);
    if (task.child !== child) return;
    task.exited = true;
    const { status, spec } = task;
    const { topologyId, path, id } = spec;
    status.exitCode = code;
    status.signal = signal;
    const stopped = task.stopRequested;
    const crashed = !stopped && code !== 0;
    const willRestart = crashed && !this.#closed && status.restarts < spec.maxRestarts;
    const at = Date.now();
    this.events.emit({
      type: "task:exited",
      ...{ topologyId, path, id, pid: child.pid!, code, signal, willRestart, stopped, at },
    });
    if (stopped) {
      status.state = "stopped";
      return;
    }
    if (crashed) this.#log.warn("task crashed", { topology: topologyId, path, code, signal, willRestart });
    if (!willRestart) {
      status.state = "exited";
      if (crashed && spec.maxRestarts > 0) {
        status.reason = `Crashed ${status.restarts + 1} times; restart limit of ${spec.maxRestarts} reached`;
      } else if (code === 126 || code === 127) {
        status.reason = `The shell could not run "${spec.exe}" (exit ${code}); see "${status.stderrFile}"`;
      }
      return;
    }
    status.state = "restarting";
    status.restarts++;
    void this.#track(task, this.#launch(task));
  }

  #fail(task: Task, reason: string): void {
    const { topologyId, path, id } = task.spec;
    Object.assign(task.status, { state: "failed", reason });
    this.events.emit({ type: "task:failed", topologyId, path, id, reason, at: Date.now() });
    this.#log.warn("task failed to start", { topology: topologyId, path, reason });
  }

  #select(filter: TaskFilter = {}): Task[] {
    const paths = filter.paths ? new Set(filter.paths) : undefined;
    const out: Task[] = [];
    for (const t of this.#tasks.values()) {
      if (filter.topologyId !== undefined && t.spec.topologyId !== filter.topologyId) continue;
      if (paths && !paths.has(t.spec.path)) continue;
      out.push(t);
    }
    return out;
  }

  async stop(filter: TaskFilter, options: StopOptions = {}): Promise<StopResult> {
    const selected = this.#select(filter).filter((t) => BUSY.has(t.status.state) || t.stopping || t.starting);
    for (const t of selected) {
      t.stopRequested = true;
      t.cancel?.abort(new Error("stopped"));
    }
    // Runs being prepared see the flag and do not spawn; wait for them to settle.
    const starting = selected.flatMap((t) => (t.starting ? [t.starting] : []));
    if (starting.length > 0) await abortable(Promise.all(starting), options.signal);
    const fresh = selected.filter((t) => !t.stopping && t.child && !t.exited);
    if (fresh.length > 0) {
      const targets = fresh.map((t) => ({ pid: t.child!.pid!, exited: () => t.exited, marker: t.sandbox }));
      const graceMs = options.graceMs ?? this.#graceMs;
      const batch = terminateTrees(targets, { graceMs, markerName: SANDBOX_VAR });
      for (const [i, t] of fresh.entries()) {
        const one: Promise<TerminateResult> = batch.then((r) => r[i]!, (err) => {
          this.#log.error("stopping tasks failed", { err });
          return { killed: false, survivors: [] };
        }).then((r) => {
          if (r.survivors.length > 0) {
            this.#log.error("task processes survived SIGKILL", { path: t.spec.path, pids: r.survivors });
          }
          if (t.stopping === one) delete t.stopping;
          return r;
        });
        t.stopping = one;
      }
    }
    const waits = selected.flatMap((t) => (t.stopping ? [t.stopping] : []));
    const results = await abortable(Promise.all(waits), options.signal);
    const stopped = selected.filter((t) => t.status.state === "stopped").length;
    return { stopped, killed: results.filter((r) => r.killed).length };
  }

  stopAll(options: StopOptions = {}): Promise<StopResult> {
    return this.stop({}, options);
  }

  list(filter?: TaskFilter): TaskStatus[] {
    return this.#select(filter).map((t) => ({ ...t.status }));
  }

  get(topologyId: string, path: string): TaskStatus | undefined {
    const t = this.#tasks.get(key(topologyId, path));
    return t && { ...t.status };
  }

  forget(filter?: TaskFilter): number {
    let n = 0;
    for (const t of this.#select(filter)) {
      if (BUSY.has(t.status.state) || t.stopping || t.starting) continue;
      this.#tasks.delete(key(t.spec.topologyId, t.spec.path));
      n++;
    }
    return n;
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    return (this.#disposed ??= this.stopAll().then(() => this.#reaper.close()));
  }
}

/** Creates a task runner over `workDir`. Nothing starts until {@linkcode TaskRunner.start}. */
export function createTaskRunner(init: TaskRunnerInit): TaskRunner {
  return new Runner(init);
}

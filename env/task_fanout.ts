/**
 * The tasks' own part of a transition, between the hooks of `leave_STATE` and `enter_STATE`: the
 * transition sent to every `direct` task and their answers applied, `basic` tasks started with the run and
 * stopped with it, crashed tasks started again at RECOVER, every task stopped at EXIT.
 *
 * @module
 */
import { fetchTasks, fetchTopologies, startPaths, stopPaths } from "../commander/mod.ts";
import { taskStateFor } from "./fsm.ts";
import { sendTransition, type TaskAnswer } from "./send_transition.ts";
import type { EnvControllerInit } from "./control_types.ts";
import type { EnvEvent, EnvRecord, EnvTask } from "./types.ts";

/** One transition's tasks step: what it is, and the tasks it changes (in place, one object per change). */
export interface TasksStep {
  rec: EnvRecord;
  event: EnvEvent;
  to: EnvRecord["state"];
  args: Record<string, string>;
  timeoutMs: number;
  tasks: Record<string, EnvTask>;
  warnings: string[];
}

/** What the tasks step did: the direct tasks' answers, the first critical failure, and whether EXIT ran. */
export interface TasksOutcome {
  answers: TaskAnswer[];
  fatal?: string;
  exited: boolean;
}

const pathsOf = (tasks: Record<string, EnvTask>, mode: EnvTask["mode"]) =>
  Object.entries(tasks).filter(([, t]) => t.mode === mode).map(([p]) => p);

/** Runs the tasks step of `s.event`. */
export async function runTasksStep(init: EnvControllerInit, s: TasksStep): Promise<TasksOutcome> {
  const { event, tasks } = s;
  if (event === "RECOVER") await recoverCrashed(init, s);
  const basic = pathsOf(tasks, "basic");
  let answers: TaskAnswer[] = [];
  let fatal: string | undefined;
  if (event !== "GO_ERROR") {
    answers = await askDirect(init, s, pathsOf(tasks, "direct"));
    fatal = applyAnswers(s, answers);
  }
  if (event === "START_ACTIVITY" && !fatal && basic.length) {
    fatal = await startBasic(init, s, basic);
  } else if (basic.length && (event === "STOP_ACTIVITY" || event === "RECOVER" || event === "GO_ERROR")) {
    if (s.rec.state === "RUNNING" || event === "RECOVER") {
      // Unreachable agents stop these tasks themselves once the record no longer places them there.
      await stopPaths(init, s.rec.topologyId, basic).catch(() => {});
    }
    for (const p of basic) tasks[p] = { ...tasks[p]!, state: taskStateFor(s.to) };
  }
  if (event === "EXIT" && !fatal) {
    // The topology itself stays active until the last hook ran: enter_DONE and after_EXIT hooks are its
    // tasks too.
    await stopPaths(init, s.rec.topologyId, Object.keys(tasks)).catch(() => {});
    for (const [p, t] of Object.entries(tasks)) tasks[p] = { ...t, state: "DONE" };
    return { answers, exited: true };
  }
  return { answers, exited: false, ...(fatal ? { fatal } : {}) };
}

async function recoverCrashed(init: EnvControllerInit, s: TasksStep): Promise<void> {
  const restarted = await restartCrashed(init, s.rec.topologyId, s.tasks);
  for (const p of restarted) {
    const { reason: _, ...t } = s.tasks[p]!;
    s.tasks[p] = { ...t, state: taskStateFor(s.to) };
  }
  if (restarted.length > 0) {
    s.warnings.push(`Restarted ${restarted.length} task(s) that had ended: ${restarted.join(", ")}`);
  }
}

async function askDirect(init: EnvControllerInit, s: TasksStep, direct: string[]): Promise<TaskAnswer[]> {
  const phase = `${s.event}: tasks answered`;
  init.onPhase?.(phase, 0, direct.length);
  return await sendTransition(
    init,
    s.rec,
    { event: s.event, to: s.to, args: s.args, runNumber: s.rec.runNumber },
    direct,
    s.timeoutMs,
    (n, total) => init.onPhase?.(phase, n, total),
  );
}

/** Applies the answers to the tasks; returns the first critical failure (the others become warnings). */
function applyAnswers(s: TasksStep, answers: TaskAnswer[]): string | undefined {
  let fatal: string | undefined;
  for (const a of answers) {
    const t = s.tasks[a.path]!;
    if (a.ok) {
      s.tasks[a.path] = { ...t, state: taskStateFor(s.to) };
      delete s.tasks[a.path]!.reason;
      continue;
    }
    s.tasks[a.path] = { ...t, state: "ERROR", reason: a.error ?? "failed" };
    const why = `Task "${a.path}" failed ${s.event}: ${a.error}`;
    if (t.critical) fatal ??= why;
    else s.warnings.push(why);
  }
  return fatal;
}

async function startBasic(
  init: EnvControllerInit,
  s: TasksStep,
  basic: string[],
): Promise<string | undefined> {
  const phase = `${s.event}: basic tasks started`;
  init.onPhase?.(phase, 0, basic.length);
  try {
    await startPaths(
      { ...init, onProgress: (d, t) => init.onPhase?.(phase, d, t) },
      s.rec.topologyId,
      basic,
      { extraEnv: { SHOAL_RUN_NUMBER: String(s.rec.runNumber ?? ""), SHOAL_ENV_ID: s.rec.id } },
    );
    for (const p of basic) s.tasks[p] = { ...s.tasks[p]!, state: "RUNNING" };
    return undefined;
  } catch (err) {
    return `Basic tasks did not start: ${(err as Error).message}`;
  }
}

/**
 * RECOVER starts again the tasks that live from DEPLOY to EXIT (`direct` and `none`) whose process ended —
 * a crash that sent the environment to ERROR — so that DEPLOYED has every such task running again. Only
 * tasks whose agent answered and said they do not run are restarted: one on an agent that did not answer
 * may still run (failover re-places the tasks of dead agents). Returns the restarted paths.
 */
async function restartCrashed(
  init: EnvControllerInit,
  topologyId: string,
  tasks: Record<string, EnvTask>,
): Promise<string[]> {
  const lives = Object.entries(tasks).filter(([, t]) => t.mode === "direct" || t.mode === "none").map(([p]) =>
    p
  );
  if (lives.length === 0) return [];
  const [records, view] = await Promise.all([fetchTopologies(init), fetchTasks(init, { topologyId })]);
  const record = records.find((r) => r.id === topologyId && r.state === "active");
  if (!record) return [];
  const answered = new Map(view.agents.map((a) => [a.agent, a]));
  const ended = lives.filter((p) => {
    const holder = Object.entries(record.placement).find(([, ps]) => ps.includes(p))?.[0];
    const agent = holder === undefined ? undefined : answered.get(holder);
    if (holder !== undefined && !agent) return false; // unknown: its agent did not answer
    return !agent?.tasks.some((t) => t.path === p && t.topologyId === topologyId && t.state === "running");
  });
  if (ended.length === 0) return [];
  await stopPaths(init, topologyId, ended);
  await startPaths(init, topologyId, ended);
  return ended;
}

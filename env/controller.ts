/**
 * The controller of environments: the peer (the CLI, as a light peer) that applies an event. It claims the
 * environment at the arbiter (a new epoch: a second controller is refused), runs the hooks and the tasks'
 * transition in AliECS's order, and writes the outcome; should it die, the arbiter calls it lost once the
 * claim's deadline passed (ERROR, "controller lost"), so every peer agrees where the environment is.
 * Its parts: `arbiter_client.ts` (finding, reading, claiming), `hook_tasks.ts` (a step of hooks),
 * `task_fanout.ts` (the tasks' step), `record_patch.ts` (the outcome written).
 *
 * @module
 */
import {
  activateTopology,
  expandRecord,
  startPaths,
  stopTopology,
  type TopologySource,
} from "../commander/mod.ts";
import { EnvConflictError, EnvEventRefusedError, EnvTransitionError } from "./errors.ts";
import { classify, DEFAULT_HOOK_TIMEOUT_MS, type EnvFile, timeoutFor } from "./file.ts";
import { allowedEvents, isEnvEvent, nextState, taskStateFor } from "./fsm.ts";
import { hookBudgetOf } from "./deadline.ts";
import { roomNeeded, roomWarning } from "./room.ts";
import { type PlanStep, planTransition } from "./hooks.ts";
import { type HookResult, runHookStep } from "./hook_tasks.ts";
import { claim, fetchEnv, fetchEnvs, findArbiter, findArbiterIn, take } from "./arbiter_client.ts";
import { writeOutcome } from "./record_patch.ts";
import { runTasksStep } from "./task_fanout.ts";
import type { TaskAnswer } from "./send_transition.ts";
import type { ControlResult, EnvControllerInit } from "./control_types.ts";
import type { ControlRule, EnvEvent, EnvRecord, EnvState, EnvTask } from "./types.ts";

export type { ControlResult, EnvControllerInit } from "./control_types.ts";
export { fetchEnv, fetchEnvs, findArbiter } from "./arbiter_client.ts";

type Hook = { path: string; rule: ControlRule; trigger: string };

function hooksOf(record: EnvRecord, paths: string[]): Hook[] {
  return classify(record.control, paths).hooks.map((h) => ({ ...h, trigger: h.rule.trigger! }));
}

/** The variables a hook of this transition runs with, for its trigger. */
function hookEnvOf(
  t: { id: string; event: EnvEvent; from: EnvState; to: EnvState; runNumber: number | null },
  args: Record<string, string> = {},
): (trigger: string) => Record<string, string> {
  return (trigger) => ({
    SHOAL_ENV_ID: t.id,
    SHOAL_ENV_EVENT: t.event,
    SHOAL_ENV_FROM: t.from,
    SHOAL_ENV_TO: t.to,
    SHOAL_ENV_TRIGGER: trigger,
    SHOAL_RUN_NUMBER: t.runNumber === null ? "" : String(t.runNumber),
    ...Object.fromEntries(Object.entries(args).map(([k, v]) => [`SHOAL_ENV_ARG_${k.toUpperCase()}`, v])),
  });
}

/** One step of hooks, its outcomes sorted into `results` and `warnings`; the first critical failure. */
function hookStep(
  init: EnvControllerInit,
  topologyId: string,
  step: Extract<PlanStep<Hook>, { kind: "hooks" }>,
  o: {
    event: EnvEvent;
    env: (trigger: string) => Record<string, string>;
    results: HookResult[];
    warnings: string[];
  },
): Promise<string | undefined> {
  return runHookStep(init, topologyId, step, {
    env: o.env,
    results: o.results,
    warnings: o.warnings,
    defaultTimeoutMs: DEFAULT_HOOK_TIMEOUT_MS,
    event: o.event,
    ...(init.onPhase ? { onPhase: init.onPhase } : {}),
  });
}

/** The error a transition that ended in ERROR throws, carrying what it did. */
function failedWith(message: string, result: ControlResult): EnvTransitionError {
  const err = new EnvTransitionError(message, "ERROR");
  (err as EnvTransitionError & { result?: ControlResult }).result = result;
  return err;
}

type CreateInit = EnvFile & {
  id?: string;
  topology: TopologySource;
  /** Lease with holds: no task runs unless all of DEPLOY's do (`ActivateOptions.hold`; the pool's starts). */
  hold?: boolean;
};

function newRecord(
  env: CreateInit,
  id: string,
  tasks: Record<string, EnvTask>,
  existing?: EnvRecord,
): EnvRecord {
  const now = Date.now();
  return {
    id,
    topologyId: id,
    file: env.topology.file,
    state: "STANDBY",
    epoch: 0,
    seq: 0,
    runNumber: null,
    control: env.control,
    tasks,
    controller: null,
    history: existing?.history ?? [],
    destroyed: false,
    createdAt: now,
    updatedAt: now,
  };
}

/** Creates an environment: records it, starts its `direct` and `none` tasks, and reaches DEPLOYED. */
export async function createEnvironment(init: EnvControllerInit, env: CreateInit): Promise<ControlResult> {
  const expanded = expandRecord(env.topology);
  const id = env.id ?? expanded.name.replace(/[^A-Za-z0-9#@~_-]/g, "_");
  const { arbiter, members } = await findArbiterIn(init);
  const existing = (await fetchEnvs(init, arbiter)).find((r) => r.id === id);
  if (existing && !existing.destroyed) {
    throw new EnvConflictError(
      `Environment "${id}" exists (${existing.state}); destroy it first (\`shoal env destroy ${id}\`) or give another --id`,
    );
  }
  const paths = expanded.tasks.map((t) => t.path);
  const { tasks } = classify(env.control, paths);
  const record = newRecord(env, id, tasks, existing);
  const now = record.createdAt;
  // DEPLOY's hooks in AliECS's order: before_DEPLOY, leave_STANDBY, the tasks starting, enter_DEPLOYED,
  // after_DEPLOY. Hooks are the topology's tasks, so one before the tasks needs the topology active first.
  const hooks = hooksOf(record, paths);
  const plan = planTransition(hooks, "DEPLOY", "STANDBY", "DEPLOYED");
  const deadline = now + timeoutFor(env.control, "DEPLOY") + hookBudgetOf(plan) + 60_000;
  let rec = await claim(init, arbiter, existing?.epoch ?? 0, {
    ...record,
    controller: { by: init.by, peer: init.node.peerId, event: "DEPLOY", startedAt: now, deadline },
  });
  const warnings: string[] = [];
  // Hooks and basic tasks lease slots later: say so now if the mesh will not have them (the pool's queue
  // counts the whole topology instead).
  const free = members.filter((m) => m.state === "alive").reduce((n, m) => n + m.slots.free, 0);
  const room = env.hold ? undefined : roomWarning(roomNeeded(tasks, hooks), free);
  if (room) warnings.push(room);
  const results: HookResult[] = [];
  const fatal = await runDeployPlan(init, env, id, plan, { results, warnings, tasks });
  const outcome = writeOutcome(init, arbiter, rec, {
    event: "DEPLOY",
    to: fatal ? "ERROR" : "DEPLOYED",
    startedAt: now,
    ok: fatal === undefined,
    ...(fatal ? { reason: fatal } : {}),
    tasks: rec.tasks,
  });
  rec = fatal ? await outcome.catch(() => rec) : await outcome;
  const result = { record: rec, transition: rec.history.at(-1)!, answers: [], hooks: results, warnings };
  if (!fatal) return result;
  throw failedWith(
    fatal.startsWith("DEPLOY failed")
      ? fatal
      : `DEPLOY of "${id}" failed, the environment is in ERROR: ${fatal}`,
    result,
  );
}

/** DEPLOY's plan: hooks, and the `direct` and `none` tasks started. Returns the first critical failure. */
async function runDeployPlan(
  init: EnvControllerInit,
  env: CreateInit,
  id: string,
  plan: PlanStep<Hook>[],
  o: { results: HookResult[]; warnings: string[]; tasks: Record<string, EnvTask> },
): Promise<string | undefined> {
  const hookEnv = hookEnvOf({ id, event: "DEPLOY", from: "STANDBY", to: "DEPLOYED", runNumber: null });
  const deployed = (p: string) => o.tasks[p]?.mode === "direct" || o.tasks[p]?.mode === "none";
  const hooksFirst = plan[0]?.kind === "hooks";
  for (const s of plan) {
    if (s.kind === "hooks") {
      if (s === plan[0]) {
        // The topology's record without its tasks yet, so that its hooks can be placed and run.
        try {
          await activateTopology(init, { ...env.topology, id }, { only: () => false });
        } catch (err) {
          return `DEPLOY failed: ${(err as Error).message}`;
        }
      }
      const fatal = await hookStep(init, id, s, { event: "DEPLOY", env: hookEnv, ...o });
      if (fatal) return fatal;
      continue;
    }
    try {
      const onProgress = (d: number, t: number) => init.onPhase?.("Starting tasks", d, t);
      const paths = Object.keys(o.tasks).filter(deployed);
      init.onPhase?.("Starting tasks", 0, paths.length);
      const hold = env.hold ? { hold: true } : {};
      if (hooksFirst) await startPaths({ ...init, onProgress }, id, paths, hold);
      else {await activateTopology({ ...init, onProgress }, { ...env.topology, id }, {
          only: deployed,
          ...hold,
        });}
    } catch (err) {
      return `DEPLOY failed: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/** Applies `event` to environment `id`, in AliECS's order; throws when refused or when it sent it to ERROR. */
export async function controlEnvironment(
  init: EnvControllerInit,
  id: string,
  eventName: string,
  args: Record<string, string> = {},
): Promise<ControlResult> {
  if (!isEnvEvent(eventName)) {
    const cur = await fetchEnv(init, id);
    throw new EnvEventRefusedError(id, cur.state, eventName, allowedEvents(cur.state));
  }
  const event = eventName;
  const taken = await take(init, id, event);
  const cur = taken.record;
  const to = nextState(cur.state, event)!;
  const paths = taken.topology
    ? expandRecord(taken.topology).tasks.map((t) => t.path)
    : Object.keys(cur.tasks);
  const plan = planTransition(hooksOf(cur, paths), event, cur.state, to);
  // Every change below replaces a task's object: a shallow copy keeps `cur.tasks` as it was, for the delta.
  const tasks: Record<string, EnvTask> = { ...cur.tasks };
  const warnings: string[] = [];
  const results: HookResult[] = [];
  const ran = await runPlan(init, cur, plan, { event, to, args, tasks, warnings, results });
  // Its tasks were stopped by the EXIT step; a topology stopped meanwhile (by hand) makes this throw.
  if (ran.exited) await stopTopology(init, cur.topologyId).catch(() => {});
  if (event !== "GO_ERROR" && event !== "EXIT") {
    for (const [p, t] of Object.entries(tasks)) {
      if (t.mode === "basic" && t.state !== "RUNNING") tasks[p] = { ...t, state: taskStateFor(to) };
    }
  }
  const { fatal } = ran;
  // A GO_ERROR that reached ERROR did what was asked: ok, with who asked and why as its reason.
  const reason = fatal ??
    (event === "GO_ERROR"
      ? `GO_ERROR asked by ${init.by}${args.reason ? `: ${args.reason}` : ""}`
      : undefined);
  const rec = await writeOutcome(init, taken.arbiter, cur, {
    event,
    to: fatal ? "ERROR" : to,
    startedAt: cur.controller?.startedAt ?? Date.now(),
    ok: fatal === undefined,
    ...(reason ? { reason } : {}),
    tasks,
  });
  const result = {
    record: rec,
    transition: rec.history.at(-1)!,
    answers: ran.answers,
    hooks: results,
    warnings,
  };
  if (fatal) throw failedWith(`${event} of "${id}" failed, the environment is in ERROR: ${fatal}`, result);
  return result;
}

/** A transition's plan run: hooks steps and the tasks' step, up to the first critical failure. */
async function runPlan(
  init: EnvControllerInit,
  cur: EnvRecord,
  plan: PlanStep<Hook>[],
  o: {
    event: EnvEvent;
    to: EnvState;
    args: Record<string, string>;
    tasks: Record<string, EnvTask>;
    warnings: string[];
    results: HookResult[];
  },
): Promise<{ answers: TaskAnswer[]; fatal?: string; exited: boolean }> {
  const env = hookEnvOf({ ...cur, event: o.event, from: cur.state, to: o.to }, o.args);
  let answers: TaskAnswer[] = [];
  let exited = false;
  for (const s of plan) {
    let fatal: string | undefined;
    if (s.kind === "hooks") {
      // Hooks are the topology's tasks: their agents run them (the controller needs none of their files).
      fatal = await hookStep(init, cur.topologyId, s, {
        event: o.event,
        env,
        results: o.results,
        warnings: o.warnings,
      });
    } else {
      const timeoutMs = timeoutFor(cur.control, o.event);
      const step = await runTasksStep(init, { rec: cur, ...o, timeoutMs });
      answers = step.answers;
      exited = step.exited;
      fatal = step.fatal;
    }
    if (fatal) return { answers, fatal, exited };
  }
  return { answers, exited };
}

/** Ends an environment: EXIT where allowed; with `force` from any state (its tasks stopped), then destroyed. */
export async function destroyEnvironment(
  init: EnvControllerInit,
  id: string,
  options: { force?: boolean } = {},
): Promise<EnvRecord> {
  const arbiter = await findArbiter(init);
  let cur = await fetchEnv(init, id, arbiter);
  if (cur.state !== "DONE" && allowedEvents(cur.state).includes("EXIT") && !options.force) {
    cur = (await controlEnvironment(init, id, "EXIT")).record;
  } else if (cur.state !== "DONE" && !options.force) {
    const err = new EnvEventRefusedError(id, cur.state, "EXIT", allowedEvents(cur.state));
    err.message += `; or destroy it from ${cur.state} with --force (its tasks are stopped)`;
    throw err;
  }
  const startedAt = Date.now();
  const rec = await claimFor(init, arbiter, cur, "EXIT", startedAt);
  // Best effort on the way out: a topology stopped already (by hand) throws here, and is what was wanted.
  if (rec.state !== "DONE") await stopTopology(init, rec.topologyId).catch(() => {});
  const tasks = Object.fromEntries(
    Object.entries(rec.tasks).map(([p, t]) => [p, { ...t, state: "DONE" as const }]),
  );
  return await writeOutcome(init, arbiter, rec, {
    event: "EXIT",
    to: "DONE",
    startedAt,
    ok: true,
    tasks,
    destroyed: true,
  });
}

/** Claims `cur` for `event` from outside the state machine (destroy, a forced topology stop). */
async function claimFor(
  init: EnvControllerInit,
  arbiter: string,
  cur: EnvRecord,
  event: EnvEvent,
  startedAt: number,
): Promise<EnvRecord> {
  return await claim(init, arbiter, cur.epoch, {
    ...cur,
    controller: { by: init.by, peer: init.node.peerId, event, startedAt, deadline: startedAt + 120_000 },
  });
}

/**
 * Stops an environment's topology from outside the environment (`shoal topology stop --force`): its tasks
 * end without a transition, so the environment goes to ERROR with that reason, as AliECS puts an
 * environment whose tasks died under it; from there `shoal env destroy --force` ends it.
 */
export async function stopEnvironmentTopology(
  init: EnvControllerInit,
  id: string,
  options: { graceMs?: number } = {},
): Promise<{ record: EnvRecord; stop: Awaited<ReturnType<typeof stopTopology>> }> {
  const arbiter = await findArbiter(init);
  const cur = await fetchEnv(init, id, arbiter);
  const startedAt = Date.now();
  const rec = await claimFor(init, arbiter, cur, "GO_ERROR", startedAt);
  const stop = await stopTopology(init, rec.topologyId, options);
  const reason = `Topology stopped outside the environment (shoal topology stop --force by ${init.by}); ` +
    `destroy it with \`shoal env destroy ${id} --force\``;
  const tasks = Object.fromEntries(
    Object.entries(rec.tasks).map(([p, t]) => [
      p,
      t.state === "INVARIANT"
        ? t
        : { ...t, state: "ERROR" as const, reason: "stopped outside the environment" },
    ]),
  );
  // The GO_ERROR reached ERROR as the forced stop asked: ok, with the reason.
  const record = await writeOutcome(init, arbiter, rec, {
    event: "GO_ERROR",
    to: "ERROR",
    startedAt,
    ok: true,
    reason,
    tasks,
  });
  return { record, stop };
}

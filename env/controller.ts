/**
 * The controller of environments: the peer (the CLI, as a light peer) that applies an event. It claims the
 * environment at the arbiter (a new epoch: a second controller is refused), runs the hooks and the tasks'
 * transition in AliECS's order, and writes the outcome; should it die, the arbiter calls it lost once the
 * claim's deadline passed (ERROR, "controller lost"), so every peer agrees where the environment is.
 *
 * @module
 */
import {
  activateTopology,
  type CommanderInit,
  expandRecord,
  fetchMembers,
  fetchTasks,
  fetchTopologies,
  startPaths,
  stopPaths,
  stopTopology,
  type TopologySource,
} from "../commander/mod.ts";
import type { TopologyRecord } from "../agent/mod.ts";
import { type Member, request } from "../mesh/mod.ts";
import { EnvConflictError, EnvEventRefusedError, EnvNotFoundError, EnvTransitionError } from "./errors.ts";
import { classify, DEFAULT_HOOK_TIMEOUT_MS, type EnvFile, timeoutFor } from "./file.ts";
import { allowedEvents, isEnvEvent, nextState, taskStateFor } from "./fsm.ts";
import { hookBudgetOf } from "./deadline.ts";
import { roomNeeded, roomWarning } from "./room.ts";
import { taskDelta } from "./task_delta.ts";
import { planTransition } from "./hooks.ts";
import { type HookResult, runHookStep } from "./hook_tasks.ts";
import { ENV_PROTOCOL, type EnvRequest, type EnvResponse, EnvResponseSchema } from "./protocols.ts";
import { sendTransition, type TaskAnswer } from "./send_transition.ts";
import { arbiterOf } from "./service.ts";
import type { ControlRule, EnvEvent, EnvRecord, EnvTask, EnvTransition } from "./types.ts";

/** A commander that says who it is (`user@host`), for the history. */
export interface EnvControllerInit extends CommanderInit {
  by: string;
  /** Progress of a phase: `done` of `total`, with what is being done. */
  onPhase?: (what: string, done: number, total: number) => void;
}

/** What a transition did. */
export interface ControlResult {
  record: EnvRecord;
  transition: EnvTransition;
  answers: TaskAnswer[];
  /** Hooks run, in order, with their outcome. */
  hooks: HookResult[];
  /** Failures of non-critical tasks and hooks: reported, the environment went on. */
  warnings: string[];
}

async function envRequest(init: CommanderInit, peer: string, req: EnvRequest): Promise<EnvResponse> {
  return await request(init.node, peer, ENV_PROTOCOL, req, {
    schema: EnvResponseSchema,
    maxBytes: 64 * 1024 * 1024,
    timeoutMs: 15_000,
    ...(init.signal ? { signal: init.signal } : {}),
  }) as EnvResponse;
}

/**
 * The arbiter, as the `via` agent's view has it: its peer ID when that is the `via` agent, else a multiaddr
 * of it (a light peer may not be connected to it yet, nor know its addresses).
 */
export async function findArbiter(init: CommanderInit): Promise<string> {
  return (await findArbiterIn(init)).arbiter;
}

async function findArbiterIn(init: CommanderInit): Promise<{ arbiter: string; members: Member[] }> {
  const members = await fetchMembers(init);
  return { arbiter: arbiterIn(init, members), members };
}

function arbiterIn(init: CommanderInit, members: Member[]): string {
  const id = arbiterOf(members);
  if (!id || id === init.via) return init.via;
  const addr = members.find((m) => m.id === id)?.addrs.find((a) => !a.includes("/0.0.0.0/"));
  if (!addr) return id;
  return addr.includes("/p2p/") ? addr : `${addr}/p2p/${id}`;
}

/** Every environment record, as `peer` (default: the `via` agent) holds them. */
export async function fetchEnvs(init: CommanderInit, peer = init.via): Promise<EnvRecord[]> {
  return ((await envRequest(init, peer, { op: "list" })).records ?? []) as EnvRecord[];
}

/** One environment, as the arbiter holds it (the freshest). */
export async function fetchEnv(init: CommanderInit, id: string, arbiter?: string): Promise<EnvRecord> {
  const all = await fetchEnvs(init, arbiter ?? await findArbiter(init));
  const r = all.find((x) => x.id === id && !x.destroyed);
  if (!r) {
    const live = all.filter((x) => !x.destroyed).map((x) => `"${x.id}"`).join(", ") || "none";
    throw new EnvNotFoundError(
      `No environment "${id}" (environments: ${live}); create one with \`shoal env create FILE\``,
    );
  }
  return r;
}

async function claim(
  init: EnvControllerInit,
  arbiter: string,
  expectEpoch: number,
  record: EnvRecord,
  allocateRun = false,
): Promise<EnvRecord> {
  const res = await envRequest(init, arbiter, { op: "claim", expectEpoch, allocateRun, record });
  if (!res.ok || !res.record) {
    throw new EnvConflictError(res.reason ?? "The environment was claimed meanwhile");
  }
  return res.record as EnvRecord;
}

async function take(
  init: EnvControllerInit,
  arbiter: string,
  id: string,
  event: EnvEvent,
): Promise<{ record: EnvRecord; topology?: TopologyRecord }> {
  const res = await envRequest(init, arbiter, { op: "take", id, event, by: init.by, peer: init.node.peerId });
  if (res.ok && res.record) {
    return {
      record: res.record as EnvRecord,
      ...(res.topology ? { topology: res.topology as TopologyRecord } : {}),
    };
  }
  if (res.live) {
    const live = res.live.map((x) => `"${x}"`).join(", ") || "none";
    throw new EnvNotFoundError(
      `No environment "${id}" (environments: ${live}); create one with \`shoal env create FILE\``,
    );
  }
  if (res.refused) {
    throw new EnvEventRefusedError(id, res.refused.state, event, allowedEvents(res.refused.state));
  }
  throw new EnvConflictError(res.reason ?? "The environment was claimed meanwhile");
}

function hooksOf(record: EnvRecord, paths: string[]): { path: string; rule: ControlRule; trigger: string }[] {
  return classify(record.control, paths).hooks.map((h) => ({ ...h, trigger: h.rule.trigger! }));
}

/** Creates an environment: records it, starts its `direct` and `none` tasks, and reaches DEPLOYED. */
export async function createEnvironment(
  init: EnvControllerInit,
  env: EnvFile & {
    id?: string;
    topology: TopologySource;
    /** Lease with holds: no task runs unless all of DEPLOY's do (`ActivateOptions.hold`; the pool's starts). */
    hold?: boolean;
  },
): Promise<ControlResult> {
  const expanded = expandRecord(env.topology);
  const id = env.id ?? expanded.name.replace(/[^A-Za-z0-9#@~_-]/g, "_");
  const { arbiter, members } = await findArbiterIn(init);
  const existing = (await fetchEnvs(init, arbiter)).find((r) => r.id === id);
  if (existing && !existing.destroyed) {
    throw new EnvConflictError(
      `Environment "${id}" exists (${existing.state}); destroy it first (\`shoal env destroy ${id}\`) or give another --id`,
    );
  }
  const { tasks } = classify(env.control, expanded.tasks.map((t) => t.path));
  const now = Date.now();
  const by = init.by;
  const record: EnvRecord = {
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
  // DEPLOY's hooks in AliECS's order: before_DEPLOY, leave_STANDBY, the tasks starting, enter_DEPLOYED,
  // after_DEPLOY. Hooks are the topology's tasks, so one before the tasks needs the topology active first.
  const paths = expanded.tasks.map((t) => t.path);
  const plan = planTransition(hooksOf(record, paths), "DEPLOY", "STANDBY", "DEPLOYED");
  const deadline = now + timeoutFor(env.control, "DEPLOY") + hookBudgetOf(plan) + 60_000;
  let rec = await claim(init, arbiter, existing?.epoch ?? 0, {
    ...record,
    controller: { by, peer: init.node.peerId, event: "DEPLOY", startedAt: now, deadline },
  });
  const deployed = (p: string) => tasks[p]?.mode === "direct" || tasks[p]?.mode === "none";
  const deployedPaths = Object.keys(tasks).filter(deployed);
  const warnings: string[] = [];
  // Hooks and basic tasks lease slots later: say so now if the mesh will not have them (the pool's queue
  // counts the whole topology instead).
  const free = members.filter((m) => m.state === "alive").reduce((n, m) => n + m.slots.free, 0);
  const room = env.hold ? undefined : roomWarning(roomNeeded(tasks, hooksOf(record, paths)), free);
  if (room) warnings.push(room);
  const hookResults: HookResult[] = [];
  const hookEnv = (trigger: string): Record<string, string> => ({
    SHOAL_ENV_ID: id,
    SHOAL_ENV_EVENT: "DEPLOY",
    SHOAL_ENV_FROM: "STANDBY",
    SHOAL_ENV_TO: "DEPLOYED",
    SHOAL_ENV_TRIGGER: trigger,
    SHOAL_RUN_NUMBER: "",
  });
  const hooksFirst = plan[0]?.kind === "hooks";
  let fatal: string | undefined;
  for (const s of plan) {
    if (fatal) break;
    if (s.kind === "hooks") {
      if (s === plan[0]) {
        // The topology's record without its tasks yet, so that its hooks can be placed and run.
        try {
          await activateTopology(init, { ...env.topology, id }, { only: () => false });
        } catch (err) {
          fatal = `DEPLOY failed: ${(err as Error).message}`;
          break;
        }
      }
      fatal = await runHookStep(init, id, s, {
        env: hookEnv,
        results: hookResults,
        warnings,
        defaultTimeoutMs: DEFAULT_HOOK_TIMEOUT_MS,
        event: "DEPLOY",
        ...(init.onPhase ? { onPhase: init.onPhase } : {}),
      });
      continue;
    }
    try {
      const onPhase = (d: number, t: number) => init.onPhase?.("Starting tasks", d, t);
      init.onPhase?.("Starting tasks", 0, deployedPaths.length);
      if (hooksFirst) {
        await startPaths({ ...init, onProgress: onPhase }, id, deployedPaths, env.hold ? { hold: true } : {});
      } else {
        await activateTopology(
          { ...init, onProgress: onPhase },
          { ...env.topology, id },
          { only: deployed, ...(env.hold ? { hold: true } : {}) },
        );
      }
    } catch (err) {
      fatal = `DEPLOY failed: ${(err as Error).message}`;
    }
  }
  const outcome = finish(init, arbiter, rec, "DEPLOY", fatal ? "ERROR" : "DEPLOYED", now, fatal, rec.tasks);
  rec = fatal ? await outcome.catch(() => rec) : await outcome;
  const result = { record: rec, transition: rec.history.at(-1)!, answers: [], hooks: hookResults, warnings };
  if (fatal) {
    const err = new EnvTransitionError(
      fatal.startsWith("DEPLOY failed")
        ? fatal
        : `DEPLOY of "${id}" failed, the environment is in ERROR: ${fatal}`,
      "ERROR",
    );
    (err as EnvTransitionError & { result?: ControlResult }).result = result;
    throw err;
  }
  return result;
}

async function finish(
  init: EnvControllerInit,
  arbiter: string,
  rec: EnvRecord,
  event: EnvEvent,
  to: EnvRecord["state"],
  startedAt: number,
  reason: string | undefined,
  tasks: Record<string, EnvTask>,
  options: { destroyed?: boolean } = {},
): Promise<EnvRecord> {
  const now = Date.now();
  const entry: EnvTransition = {
    event,
    from: rec.state,
    to,
    ok: reason === undefined,
    by: init.by,
    startedAt,
    ms: now - startedAt,
    ...(reason ? { reason } : {}),
    ...(rec.runNumber !== null && (event === "START_ACTIVITY" || event === "STOP_ACTIVITY")
      ? { runNumber: rec.runNumber }
      : {}),
  };
  // Only what changed travels; the arbiter applies it to its record and says the version it made.
  const { bulk, changed } = taskDelta(rec.tasks, tasks);
  const res = await envRequest(init, arbiter, {
    op: "patch",
    id: rec.id,
    epoch: rec.epoch,
    state: to,
    ...(bulk ? { bulk } : {}),
    tasks: changed,
    entry,
    reason: reason ?? null,
    ...(options.destroyed ? { destroyed: true } : {}),
  });
  if (!res.ok || !res.head) throw new EnvConflictError(res.reason ?? "Lost control of the environment");
  const next: EnvRecord = {
    ...rec,
    state: to,
    tasks,
    controller: null,
    history: [...rec.history, entry].slice(-100),
    ...res.head,
    ...(options.destroyed ? { destroyed: true } : {}),
  };
  if (reason) next.reason = reason;
  else delete next.reason;
  return next;
}

/** Applies `event` to environment `id`, in AliECS's order; throws when refused or when it sent it to ERROR. */
export async function controlEnvironment(
  init: EnvControllerInit,
  id: string,
  eventName: string,
  args: Record<string, string> = {},
): Promise<ControlResult> {
  const arbiter = await findArbiter(init);
  if (!isEnvEvent(eventName)) {
    const cur = await fetchEnv(init, id, arbiter);
    throw new EnvEventRefusedError(id, cur.state, eventName, allowedEvents(cur.state));
  }
  const event = eventName;
  // One round trip takes it: the arbiter checks the state allows the event, sets the deadline, allocates a
  // run number for START_ACTIVITY, and sends the topology along when hooks need its paths.
  const taken = await take(init, arbiter, id, event);
  let rec = taken.record;
  const cur = rec;
  const to = nextState(cur.state, event)!;
  const expanded = taken.topology ? expandRecord(taken.topology) : undefined;
  const paths = expanded ? expanded.tasks.map((t) => t.path) : Object.keys(cur.tasks);
  const plan = planTransition(hooksOf(cur, paths), event, cur.state, to);
  const taskTimeout = timeoutFor(cur.control, event);
  const startedAt = rec.controller?.startedAt ?? Date.now();
  const runNumber = rec.runNumber;
  // Every change below replaces a task's object: a shallow copy keeps `rec.tasks` as it was, for the delta.
  const tasks: Record<string, EnvTask> = { ...rec.tasks };
  const warnings: string[] = [];
  const hookResults: ControlResult["hooks"] = [];
  let answers: TaskAnswer[] = [];
  let fatal: string | undefined;
  let exited = false;
  const hookEnv = (trigger: string): Record<string, string> => ({
    SHOAL_ENV_ID: id,
    SHOAL_ENV_EVENT: event,
    SHOAL_ENV_FROM: cur.state,
    SHOAL_ENV_TO: to,
    SHOAL_ENV_TRIGGER: trigger,
    SHOAL_RUN_NUMBER: runNumber === null ? "" : String(runNumber),
    ...Object.fromEntries(Object.entries(args).map(([k, v]) => [`SHOAL_ENV_ARG_${k.toUpperCase()}`, v])),
  });
  for (const s of plan) {
    if (fatal) break;
    if (s.kind === "hooks") {
      // Hooks are the topology's tasks: their agents run them (the controller needs none of their files).
      fatal = await runHookStep(init, rec.topologyId, s, {
        env: hookEnv,
        results: hookResults,
        warnings,
        defaultTimeoutMs: DEFAULT_HOOK_TIMEOUT_MS,
        event,
        ...(init.onPhase ? { onPhase: init.onPhase } : {}),
      });
      continue;
    }
    // The tasks' own transition.
    if (event === "RECOVER") {
      const restarted = await restartCrashed(init, rec.topologyId, tasks);
      for (const p of restarted) {
        const { reason: _, ...t } = tasks[p]!;
        tasks[p] = { ...t, state: taskStateFor(to) };
      }
      if (restarted.length > 0) {
        warnings.push(`Restarted ${restarted.length} task(s) that had ended: ${restarted.join(", ")}`);
      }
    }
    const direct = Object.entries(tasks).filter(([, t]) => t.mode === "direct").map(([p]) => p);
    const basic = Object.entries(tasks).filter(([, t]) => t.mode === "basic").map(([p]) => p);
    if (event !== "GO_ERROR") {
      const phase = `${event}: tasks answered`;
      init.onPhase?.(phase, 0, direct.length);
      answers = await sendTransition(
        init,
        rec,
        { event, to, args, runNumber },
        direct,
        taskTimeout,
        (n, total) => init.onPhase?.(phase, n, total),
      );
      for (const a of answers) {
        const t = tasks[a.path]!;
        if (a.ok) {
          tasks[a.path] = { ...t, state: taskStateFor(to) };
          delete tasks[a.path]!.reason;
          continue;
        }
        tasks[a.path] = { ...t, state: "ERROR", reason: a.error ?? "failed" };
        const why = `Task "${a.path}" failed ${event}: ${a.error}`;
        if (t.critical) fatal ??= why;
        else warnings.push(why);
      }
    }
    if (event === "START_ACTIVITY" && !fatal && basic.length) {
      const phase = `${event}: basic tasks started`;
      init.onPhase?.(phase, 0, basic.length);
      try {
        await startPaths(
          { ...init, onProgress: (d, t) => init.onPhase?.(phase, d, t) },
          rec.topologyId,
          basic,
          {
            extraEnv: { SHOAL_RUN_NUMBER: String(runNumber ?? ""), SHOAL_ENV_ID: id },
          },
        );
        for (const p of basic) tasks[p] = { ...tasks[p]!, state: "RUNNING" };
      } catch (err) {
        fatal = `Basic tasks did not start: ${(err as Error).message}`;
      }
    } else if (basic.length && (event === "STOP_ACTIVITY" || event === "RECOVER" || event === "GO_ERROR")) {
      if (cur.state === "RUNNING" || event === "RECOVER") {
        await stopPaths(init, rec.topologyId, basic).catch(() => {});
      }
      for (const p of basic) tasks[p] = { ...tasks[p]!, state: taskStateFor(to) };
    }
    if (event === "EXIT" && !fatal) {
      // The topology itself stays active until the last hook ran: enter_DONE and after_EXIT hooks are its
      // tasks too.
      await stopPaths(init, rec.topologyId, Object.keys(tasks)).catch(() => {});
      for (const [p, t] of Object.entries(tasks)) tasks[p] = { ...t, state: "DONE" };
      exited = true;
    }
  }
  if (exited) await stopTopology(init, rec.topologyId).catch(() => {});
  if (event !== "GO_ERROR" && event !== "EXIT") {
    for (const [p, t] of Object.entries(tasks)) {
      if (t.mode === "basic" && t.state !== "RUNNING") tasks[p] = { ...t, state: taskStateFor(to) };
    }
  }
  const final = fatal ? "ERROR" : to;
  const reason = fatal ??
    (event === "GO_ERROR"
      ? `GO_ERROR asked by ${init.by}${args.reason ? `: ${args.reason}` : ""}`
      : undefined);
  rec = await finish(init, arbiter, rec, event, final, startedAt, reason, tasks);
  if (event === "GO_ERROR") rec.history.at(-1)!.ok = true;
  const result = { record: rec, transition: rec.history.at(-1)!, answers, hooks: hookResults, warnings };
  if (fatal) {
    const err = new EnvTransitionError(
      `${event} of "${id}" failed, the environment is in ERROR: ${fatal}`,
      "ERROR",
    );
    (err as EnvTransitionError & { result?: ControlResult }).result = result;
    throw err;
  }
  return result;
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
  const rec = await claim(init, arbiter, cur.epoch, {
    ...cur,
    controller: {
      by: init.by,
      peer: init.node.peerId,
      event: "EXIT",
      startedAt,
      deadline: startedAt + 120_000,
    },
  });
  if (rec.state !== "DONE") await stopTopology(init, rec.topologyId).catch(() => {});
  const tasks = Object.fromEntries(
    Object.entries(rec.tasks).map(([p, t]) => [p, { ...t, state: "DONE" as const }]),
  );
  return await finish(init, arbiter, rec, "EXIT", "DONE", startedAt, undefined, tasks, { destroyed: true });
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
  const rec = await claim(init, arbiter, cur.epoch, {
    ...cur,
    controller: {
      by: init.by,
      peer: init.node.peerId,
      event: "GO_ERROR",
      startedAt,
      deadline: startedAt + 120_000,
    },
  });
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
  const record = await finish(init, arbiter, rec, "GO_ERROR", "ERROR", startedAt, reason, tasks);
  return { record, stop };
}

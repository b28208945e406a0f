/**
 * Hooks run as the topology's tasks they are: started through the agents' normal task start path (placed,
 * leased, run in a sandbox by the agent that holds the lease, with the transition's variables), waited for,
 * and dropped from the placement once they ended; the exit code is the result. The controller — often the
 * CLI, a light peer — never runs a hook itself, so it needs none of the hook's files.
 *
 * @module
 */
import { basename } from "node:path";
import { lpStream } from "@libp2p/utils";
import {
  LogChunkSchema,
  LOGS_PROTOCOL,
  TASKS_PROTOCOL,
  TasksResponseSchema,
  type TaskStatus,
} from "../agent/mod.ts";
import { type CommanderInit, errorText, type PlacedTask, startPaths, stopPaths } from "../commander/mod.ts";
import { decode, encode, request } from "../mesh/mod.ts";

/** A hook's outcome: its exit code (null when it did not run to the end) and why it failed. */
export interface HookOutcome {
  code: number | null;
  error?: string;
}

/** Polling of a hook's agent, from quick (most hooks are short) to this. */
const MAX_POLL_MS = 500;

/**
 * Runs the hook tasks `paths` of topology `topologyId` together, each on the agent that leases it, with
 * `env` added to their environment; resolves once each ended or was stopped after `timeoutMs(path)`.
 */
export async function runHookTasks(
  init: CommanderInit,
  topologyId: string,
  paths: string[],
  options: { env: Record<string, string>; timeoutMs: (path: string) => number },
): Promise<Map<string, HookOutcome>> {
  const out = new Map<string, HookOutcome>();
  let placed: PlacedTask[];
  try {
    placed = await startPaths(init, topologyId, paths, { extraEnv: options.env });
  } catch (err) {
    for (const p of paths) out.set(p, { code: null, error: `did not start: ${errorText(err)}` });
    return out;
  }
  await Promise.all(placed.map(async (t) => {
    const end = await waitForEnd(init, t, options.timeoutMs(t.path));
    if (!end) {
      out.set(t.path, { code: null, error: `timed out after ${options.timeoutMs(t.path) / 1000} s` });
      return;
    }
    if (end.state === "exited" && end.exitCode === 0) return void out.set(t.path, { code: 0 });
    const last = end.stderrFile ? await lastStderrLine(init, t.agent, topologyId, end) : undefined;
    const how = end.state === "failed"
      ? `failed: ${end.reason ?? "did not start"}`
      : end.signal
      ? `killed by ${end.signal}`
      : `exit code ${end.exitCode}`;
    out.set(t.path, { code: end.exitCode ?? null, error: `${how}${last ? `: ${last}` : ""}` });
  }));
  // Whatever still runs (timed out) is stopped; every hook leaves the placement until its next moment.
  // After reading their stderr: an agent serves the logs of the tasks it lists.
  await stopPaths(init, topologyId, placed.map((t) => t.path), { graceMs: 1_000 }).catch(() => {});
  for (const p of paths) if (!out.has(p)) out.set(p, { code: null, error: "was not placed" });
  return out;
}

/** The hook's status once it ended, or undefined when `timeoutMs` passed first. */
async function waitForEnd(
  init: CommanderInit,
  t: PlacedTask,
  timeoutMs: number,
): Promise<TaskStatus | undefined> {
  const deadline = Date.now() + timeoutMs;
  let status: TaskStatus | undefined = t;
  let wait = 10;
  while (true) {
    if (status && (status.state === "exited" || status.state === "failed" || status.state === "stopped")) {
      return status;
    }
    if (Date.now() >= deadline || init.signal?.aborted) return undefined;
    await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, deadline - Date.now()))));
    wait = Math.min(wait * 2, MAX_POLL_MS);
    const res = await request(init.node, t.agent, TASKS_PROTOCOL, { topologyId: t.topologyId }, {
      schema: TasksResponseSchema,
      timeoutMs: 10_000,
      ...(init.signal ? { signal: init.signal } : {}),
    }).catch(() => undefined);
    // Not listed any more: ended and forgotten; keep the last status seen but go on asking.
    status = res?.tasks.find((s) => s.path === t.path && (s.startedAt ?? 0) >= (t.startedAt ?? 0)) ?? status;
  }
}

/** The last line the hook's run wrote to stderr, read from its agent (for the error message). */
async function lastStderrLine(
  init: CommanderInit,
  agent: string,
  topologyId: string,
  t: TaskStatus,
): Promise<string | undefined> {
  const file = basename(t.stderrFile!);
  const escaped = t.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  try {
    const stream = await init.node.openStream(agent, LOGS_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
    const lp = lpStream(stream, { maxDataLength: 1024 * 1024 });
    await lp.write(encode({ topologyId, pathRegex: `^${escaped}$`, tailBytes: 2_000 }));
    let text = "";
    while (true) {
      const frame = await lp.read({ signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      if (!frame) break;
      const chunk = decode(frame.subarray(), LogChunkSchema, { what: LOGS_PROTOCOL, maxBytes: 1024 * 1024 });
      if (chunk.file === file) text += new TextDecoder().decode(chunk.data);
    }
    // The log is read: a close that fails (the agent hung up first) loses nothing.
    await stream.close().catch(() => {});
    return text.trim().split("\n").at(-1) || undefined;
  } catch {
    return undefined;
  }
}

/** A hook as a transition's plan holds it. */
export interface PlannedHook {
  path: string;
  trigger: string;
  rule: { critical: boolean; timeoutMs?: number };
}

/** A hook's outcome as a transition reports it. */
export interface HookResult {
  path: string;
  trigger: string;
  ok: boolean;
  code: number | null;
  ms: number;
  error?: string;
}

/**
 * Runs one step of a transition's plan — the hooks of one moment and weight, together — and sorts their
 * outcomes: `results` in order, `warnings` for non-critical failures; returns the first critical failure.
 */
export async function runHookStep(
  init: CommanderInit,
  topologyId: string,
  step: { moment: string; weight: number; hooks: PlannedHook[] },
  options: {
    env: (trigger: string) => Record<string, string>;
    results: HookResult[];
    warnings: string[];
    defaultTimeoutMs: number;
    onPhase?: (what: string, done: number, total: number) => void;
    event: string;
  },
): Promise<string | undefined> {
  const t0 = Date.now();
  const w = step.weight;
  const trigger = `${step.moment}${w > 0 ? `+${w}` : w < 0 ? w : ""}`;
  const rules = new Map(step.hooks.map((h) => [h.path, h.rule]));
  const phase = `${options.event}: ${trigger} hooks`;
  options.onPhase?.(phase, 0, step.hooks.length);
  const outcomes = await runHookTasks(init, topologyId, step.hooks.map((h) => h.path), {
    env: options.env(trigger),
    timeoutMs: (p) => rules.get(p)?.timeoutMs ?? options.defaultTimeoutMs,
  });
  const ms = Date.now() - t0;
  let fatal: string | undefined;
  for (const h of step.hooks) {
    const r = outcomes.get(h.path) ?? { code: null };
    const ok = r.code === 0;
    options.results.push({
      path: h.path,
      trigger: h.trigger,
      ok,
      code: r.code,
      ms,
      ...(r.error ? { error: r.error } : {}),
    });
    if (ok) continue;
    const why = `Hook "${h.path}" (${h.trigger}) failed: ${r.error}`;
    if (h.rule.critical) fatal ??= why;
    else options.warnings.push(why);
  }
  options.onPhase?.(phase, step.hooks.length, step.hooks.length);
  return fatal;
}

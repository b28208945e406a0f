/**
 * Environment transitions as a task sees them: custom commands whose payload starts with
 * {@linkcode TRANSITION_MARKER} are taken out of the command stream and offered on
 * `GET /v1/env/transitions` to the tasks the transition names (its `paths`, the environment's direct tasks);
 * the task answers with `POST /v1/env/transitions/<id>` (`{"ok":true}` or `{"error":"why"}`), which goes
 * back as the command's reply.
 *
 * @module
 */
import type { Command } from "../commands/mod.ts";

/** The first bytes of a custom command that carries a transition (same as `env/protocols.ts`). */
export const TRANSITION_MARKER = "shoal-env-transition\n";
const MARKER = new TextEncoder().encode(TRANSITION_MARKER);

/** A transition offered to a task. */
export interface TaskTransition {
  type: "transition";
  /** The command's ID: answer to it. */
  id: string;
  envId: string;
  event: string;
  from: string;
  to: string;
  args: Record<string, string>;
  runNumber: number | null;
}

/** Parsed once per command, however many local tasks it reaches. */
const parsed = new WeakMap<Command, { t: Omit<TaskTransition, "id">; paths: Set<string> } | null>();

/**
 * The transition a command carries for the task at `path`: `null` when the command is no transition,
 * `undefined` when it is one but not for this task.
 */
export function transitionOf(command: Command, path: string): TaskTransition | null | undefined {
  let entry = parsed.get(command);
  if (entry === undefined) {
    entry = parse(command.payload);
    parsed.set(command, entry);
  }
  if (entry === null) return null;
  return entry.paths.has(path) ? { ...entry.t, id: command.id } : undefined;
}

function parse(p: Uint8Array): { t: Omit<TaskTransition, "id">; paths: Set<string> } | null {
  if (p.byteLength < MARKER.byteLength || MARKER.some((b, i) => p[i] !== b)) return null;
  try {
    const body = JSON.parse(new TextDecoder().decode(p.subarray(MARKER.byteLength))) as {
      envId: string;
      event: string;
      from: string;
      to: string;
      args?: Record<string, string>;
      runNumber?: number | null;
      paths: string[];
    };
    return {
      paths: new Set(body.paths),
      t: {
        type: "transition",
        envId: body.envId,
        event: body.event,
        from: body.from,
        to: body.to,
        args: body.args ?? {},
        runNumber: body.runNumber ?? null,
      },
    };
  } catch {
    return {
      paths: new Set(),
      t: { type: "transition", envId: "", event: "", from: "", to: "", args: {}, runNumber: null },
    };
  }
}

/** A task's answer, as the reply's payload. */
export function answerPayload(body: string): Uint8Array {
  let parsed: { ok?: unknown; error?: unknown; at?: unknown } = {};
  try {
    parsed = body.trim() ? JSON.parse(body) : { ok: true };
  } catch {
    throw new RangeError(`An answer is {"ok":true} or {"error":"why"}, not "${body.slice(0, 80)}"`);
  }
  const error = typeof parsed.error === "string" && parsed.error !== "" ? parsed.error : undefined;
  if (error === undefined && parsed.ok !== true) {
    throw new RangeError(`An answer is {"ok":true} or {"error":"why"}, not "${body.slice(0, 80)}"`);
  }
  // `at`: when the task answered, by its own clock if it says (a shell task's `date +%s%3N`), else ours.
  const at = typeof parsed.at === "number" ? parsed.at : Date.now();
  return new TextEncoder().encode(JSON.stringify(error ? { ok: false, error, at } : { ok: true, at }));
}

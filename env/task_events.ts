/**
 * The `task:state` events of an environment: one per group of tasks that reached the same state for the
 * same reason — a transition of 1,000 tasks is one event with 1,000 paths, not 1,000 events on the monitor
 * topic — and `path` rather than `paths` when a single task changed. Consumers that show tasks one by one
 * (`shoal monitor`, the dashboard) expand them with {@linkcode expandTaskStates}.
 *
 * @module
 */
import type { EventOf } from "../agent/wire/mod.ts";
import type { EnvTask } from "./types.ts";

/** A `task:state` event as published (in a batch, without `by`): `path` for one task, `paths` for several. */
export type TaskStateEvent = Omit<EventOf<"task:state">, "by">;

/** The `task:state` events that take `before`'s tasks to `after`'s (all of them when `before` is absent). */
export function taskStateEvents(
  envId: string,
  before: Record<string, EnvTask> | undefined,
  after: Record<string, EnvTask>,
  at: number,
): TaskStateEvent[] {
  const groups = new Map<string, { state: EnvTask["state"]; reason?: string; paths: string[] }>();
  for (const [path, t] of Object.entries(after)) {
    const was = before?.[path];
    if (was?.state === t.state && was?.reason === t.reason) continue;
    const key = `${t.state}\0${t.reason ?? ""}`;
    let g = groups.get(key);
    if (!g) groups.set(key, g = { state: t.state, ...(t.reason ? { reason: t.reason } : {}), paths: [] });
    g.paths.push(path);
  }
  return [...groups.values()].map(({ paths, ...g }) => ({
    type: "task:state" as const,
    at,
    envId,
    ...(paths.length === 1 ? { path: paths[0]! } : { paths }),
    ...g,
  }));
}

/**
 * One event per task of a `task:state` event (`paths` → one event each with its `path`); any other
 * event as it is.
 */
export function expandTaskStates<E extends Record<string, unknown>>(e: E): E[] {
  if (e.type !== "task:state" || !Array.isArray(e.paths)) return [e];
  const { paths, ...rest } = e;
  return (paths as unknown[]).filter((p) => typeof p === "string").map((path) =>
    ({ ...rest, path }) as unknown as E
  );
}

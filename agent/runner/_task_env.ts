/**
 * The environment of a task: the agent's own, plus DDS's variables, plus the spec's extras.
 *
 * @module
 */
import process from "node:process";
import type { TaskSpec } from "../wire/mod.ts";

/** Variable holding the sandbox dir; also how stray processes of a task are recognised. */
export const SANDBOX_VAR = "SHOAL_TASK_SANDBOX";

/** A plain copy of this process's environment (reading `process.env` key by key is slow in Deno). */
export function snapshotEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * Builds a task's environment as the DDS agent does: `DDS_COLLECTION_NAME` is always set (empty outside a
 * collection) and `DDS_COLLECTION_INDEX` only inside one. `extraEnv` may override; the sandbox var may not.
 */
export function taskEnv(
  base: Record<string, string>,
  spec: TaskSpec,
  sandbox: string,
): Record<string, string> {
  const env: Record<string, string> = {
    ...base,
    DDS_TASK_ID: spec.id,
    DDS_TASK_INDEX: String(spec.index),
    DDS_TASK_NAME: spec.name,
    DDS_TASK_PATH: spec.path,
    DDS_GROUP_NAME: spec.groupName,
    DDS_COLLECTION_NAME: spec.collectionName ?? "",
    DDS_SLOT_ID: spec.slotId,
    DDS_SESSION_ID: spec.sessionId,
  };
  if (spec.collectionIndex !== undefined) env.DDS_COLLECTION_INDEX = String(spec.collectionIndex);
  else delete env.DDS_COLLECTION_INDEX;
  if (spec.extraEnv) Object.assign(env, spec.extraEnv);
  env[SANDBOX_VAR] = sandbox;
  return env;
}

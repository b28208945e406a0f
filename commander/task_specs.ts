/**
 * Turning runtime tasks of an expanded topology into the specs agents run: DDS `reachable="false"`
 * executables and env scripts are read here, on the commander, and shipped with the task. Large DDS
 * assets become bytes too, one array per distinct value, so that they travel as shipped executables do
 * (by staging, `lease_staging.ts`) rather than once per task inside the lease.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
// Directly, not through stage/mod.ts: that exports the agent-side service too, which imports this area.
import { stagedAsset, stagedNames } from "../stage/declared.ts";
import type { RuntimeTask } from "../topology/mod.ts";
import type { TaskFile, TaskSpec } from "../agent/wire/mod.ts";
import { LINK_FROM } from "../agent/runner/mod.ts";

/** Expands `$VAR` and `${VAR}` from `env` (unknown ones stay as written). */
function expandEnv(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, name: string) => env[name] ?? m);
}

/** Reads files once per command line, for many tasks of one kind. */
export class Shipper {
  readonly #cache = new Map<string, Uint8Array | null>();
  readonly #texts = new Map<string, Uint8Array>();

  /** The bytes of `file`, or null when it cannot be read here. */
  read(file: string): Uint8Array | null {
    if (!this.#cache.has(file)) {
      try {
        this.#cache.set(file, readFileSync(file));
      } catch {
        this.#cache.set(file, null);
      }
    }
    return this.#cache.get(file)!;
  }

  /** `text` as UTF-8, one array per distinct text (a lease ships, or stages, each array once). */
  bytes(text: string): Uint8Array {
    let b = this.#texts.get(text);
    if (!b) {
      b = new TextEncoder().encode(text);
      this.#texts.set(text, b);
    }
    return b;
  }
}

/** Options for {@linkcode toTaskSpec}. */
export interface TaskSpecOptions {
  topologyId: string;
  sessionId: string;
  shipper: Shipper;
  env?: Record<string, string | undefined>;
}

/** The spec of one runtime task (`slotId` is filled in by the agent that leases the slot). */
export function toTaskSpec(task: RuntimeTask, options: TaskSpecOptions): TaskSpec {
  const env = options.env ?? process.env;
  // A large asset is one read-only file per agent, hard-linked into each sandbox (tasks share its inode).
  // An asset whose value is `$SHOAL_STAGE/<name>` is that staged name, linked in by the agent.
  const files: TaskFile[] = task.assets.map((a) => {
    const staged = stagedAsset(a.value);
    if (staged !== undefined) return { name: a.name, content: "", stage: staged };
    return a.value.length >= LINK_FROM
      ? { name: a.name, content: options.shipper.bytes(a.value), mode: 0o444 }
      : { name: a.name, content: a.value };
  });
  let exe = task.exe;
  if (!task.exeReachable) {
    const [program = "", ...rest] = exe.trim().split(/\s+/);
    const local = expandEnv(program, env);
    const bytes = options.shipper.read(local);
    if (bytes) {
      const name = basename(local);
      files.push({ name, content: bytes, mode: 0o755 });
      exe = [`./${name}`, ...rest].join(" ");
    }
  }
  let envScript: string | undefined;
  if (task.env) {
    if (task.envReachable) envScript = `. ${task.env}\n`;
    else {
      const bytes = options.shipper.read(expandEnv(task.env, env));
      envScript = bytes ? new TextDecoder().decode(bytes) : `. ${task.env}\n`;
    }
  }
  const maxRestarts = Math.max(
    0,
    ...task.triggers.filter((t) => t.condition === "TaskCrashed" && t.action === "RestartTask")
      .map((t) => Number.parseInt(t.arg, 10) || 0),
  );
  return {
    topologyId: options.topologyId,
    path: task.path,
    id: task.id,
    name: task.name,
    index: task.index,
    ...(task.collectionName !== null ? { collectionName: task.collectionName } : {}),
    ...(task.collectionIndex !== null ? { collectionIndex: task.collectionIndex } : {}),
    groupName: task.groupName,
    exe,
    ...(envScript !== undefined ? { env: envScript } : {}),
    ...(files.length ? { files } : {}),
    maxRestarts,
    slotId: "",
    sessionId: options.sessionId,
    extraEnv: { SHOAL_TOPOLOGY_ID: options.topologyId },
    ...(task.properties.length
      ? { properties: task.properties.map((p) => ({ name: p.name, access: p.access, scope: p.scope })) }
      : {}),
    ...(task.collectionPath !== null ? { collectionPath: task.collectionPath } : {}),
  };
}

/**
 * The staged names a task declares: `$SHOAL_STAGE/<name>` in its command line or env, and its files that
 * are staged names (assets whose value is exactly that).
 */
export function declaredNames(spec: { exe: string; env?: string; files?: { stage?: string }[] }): string[] {
  const names = new Set(stagedNames(`${spec.exe}\n${spec.env ?? ""}`));
  for (const f of spec.files ?? []) if (f.stage !== undefined) names.add(f.stage);
  return [...names];
}

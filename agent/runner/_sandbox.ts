/**
 * A task's directories: its sandbox (cwd, assets, env script) and the names of its log files.
 *
 * @module
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { type ContentCache, LINK_FROM } from "./_content_cache.ts";
import { dirname, isAbsolute, join } from "node:path";
import { TaskFileError } from "../errors.ts";
import type { TaskFile } from "../wire/mod.ts";

/** Name of the env script written into the sandbox when a spec has `env`. */
export const ENV_SCRIPT = ".shoal_env.sh";

/** A DDS path as one file-name component: `main/group1/task1_0` → `main_group1_task1_0`. */
export function flatPath(path: string): string {
  return path.replaceAll("/", "_");
}

/** Throws `TypeError` unless the topology ID and path make safe directory names. */
export function checkNames(topologyId: string, path: string): void {
  for (const [what, name] of [["topology ID", topologyId], ["task path", flatPath(path)]] as const) {
    if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new TypeError(`Invalid ${what} "${name}": must be a non-empty file name without "/"`);
    }
  }
}

/** `<workDir>/tasks/<topologyId>/<flat path>`. */
export function sandboxDir(workDir: string, topologyId: string, path: string): string {
  return join(workDir, "tasks", topologyId, flatPath(path));
}

/** `<workDir>/logs/<topologyId>`. */
export function logDir(workDir: string, topologyId: string): string {
  return join(workDir, "logs", topologyId);
}

/** Log file names of one run: `<flat path>.<ISO time with - for :>.out` and `.err`. */
export function logFiles(dir: string, path: string, startedAt: number): { out: string; err: string } {
  const base = join(dir, `${flatPath(path)}.${new Date(startedAt).toISOString().replaceAll(":", "-")}`);
  return { out: `${base}.out`, err: `${base}.err` };
}

/** Throws {@linkcode TaskFileError} unless `name` stays inside the sandbox. */
export function checkFileName(name: string): void {
  if (name === "" || name.includes("\0")) throw new TaskFileError(name, "empty or invalid name");
  if (isAbsolute(name)) throw new TaskFileError(name, "must be relative to the task's sandbox");
  if (name.split(/[\\/]/).includes("..")) throw new TaskFileError(name, `must not contain ".."`);
}

/** Creates a directory whose parent exists (one syscall), else with its parents; an existing one is fine. */
export async function makeDir(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT") await mkdir(dir, { recursive: true });
    else if (code !== "EEXIST") throw err;
  }
}

/**
 * Creates the sandbox and writes the spec's files and env script into it (large binary files through
 * `cache`, as hard links); resolves to the env script path.
 * Rejects with {@linkcode TaskFileError} for a bad file name, or with the fs error.
 */
export async function prepareSandbox(
  dir: string,
  files: TaskFile[] = [],
  env?: string,
  cache?: ContentCache,
): Promise<string | undefined> {
  for (const f of files) checkFileName(f.name);
  await makeDir(dir);
  const script = env === undefined ? undefined : join(dir, ENV_SCRIPT);
  await Promise.all([
    ...files.map(async (f) => {
      const file = join(dir, f.name);
      if (f.name.includes("/")) await mkdir(dirname(file), { recursive: true });
      if (f.link !== undefined) {
        if (!cache) throw new TaskFileError(f.name, "a staged file needs the agent's content cache");
        return await (f.stage !== undefined ? cache.linkTree(f.link, file) : cache.linkEntry(f.link, file));
      }
      if (f.stage !== undefined) {
        throw new TaskFileError(f.name, `staged name "${f.stage}" is not present on this agent`);
      }
      if (cache && typeof f.content !== "string" && f.content.byteLength >= LINK_FROM) {
        return await cache.place(file, f.content, f.mode ?? 0o644);
      }
      await writeFile(file, f.content);
      await chmod(file, f.mode ?? 0o644);
    }),
    script === undefined ? undefined : writeFile(script, env!.endsWith("\n") ? env! : `${env}\n`),
  ]);
  return script;
}

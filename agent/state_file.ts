/**
 * `agent.json` in an agent's data dir: how tools on the same host find a running agent.
 *
 * @module
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** File name of the state file inside a data dir. */
export const STATE_FILE = "agent.json";

/** What an agent writes about itself. */
export interface AgentStateFile {
  peerId: string;
  pid: number;
  addrs: string[];
  startedAt: number;
  /** True once the agent reached the mesh (or is the first of it). */
  joined: boolean;
  /** "running" until a clean shutdown writes "stopped". */
  status: "running" | "stopped";
  version: string;
}

/** Writes in progress per file: two writes at once (start and join) shared one temporary file. */
const writing = new Map<string, Promise<void>>();

/** Writes the state file atomically; writes to one file happen in call order, so the last call wins. */
export function writeStateFile(dataDir: string, state: AgentStateFile): Promise<void> {
  const file = join(dataDir, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const text = JSON.stringify(state) + "\n";
  // The previous write's failure was its caller's to see; this one starts afresh.
  const next = (writing.get(file) ?? Promise.resolve()).catch(() => {}).then(async () => {
    await writeFile(tmp, text);
    await rename(tmp, file);
  });
  writing.set(file, next);
  void next.finally(() => {
    if (writing.get(file) === next) writing.delete(file);
    // The caller gets this write's failure from `next`; the tidy-up chain must not report it a second time.
  }).catch(() => {});
  return next;
}

/** Reads a state file; undefined when it does not exist (yet) or is partial. */
export async function readStateFile(dataDir: string): Promise<AgentStateFile | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, STATE_FILE), "utf8")) as AgentStateFile;
  } catch {
    return undefined;
  }
}

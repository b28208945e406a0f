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

/** Writes the state file atomically. */
export async function writeStateFile(dataDir: string, state: AgentStateFile): Promise<void> {
  const file = join(dataDir, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state) + "\n");
  await rename(tmp, file);
}

/** Reads a state file; undefined when it does not exist (yet) or is partial. */
export async function readStateFile(dataDir: string): Promise<AgentStateFile | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, STATE_FILE), "utf8")) as AgentStateFile;
  } catch {
    return undefined;
  }
}

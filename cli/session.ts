/**
 * Sessions (like DDS sessions): a named directory under `$SHOAL_HOME/sessions/` holding the mesh's swarm
 * key, the agents' jobs and data dirs, and the addresses to reach the mesh.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { readStateFile } from "../agent/mod.ts";
import { readSwarmKey, writeSwarmKey } from "../mesh/mod.ts";
import type { AgentJob, SessionRef } from "../rms/mod.ts";
import { SessionNotFoundError } from "./errors.ts";

/** Session names follow the same rule as DDS names. */
const NAME_RE = /^[a-zA-Z0-9#@~_-]{1,128}$/;

/** What `session.json` holds. */
export interface SessionRecord {
  name: string;
  id: string;
  createdAt: number;
  jobs: AgentJob[];
  /** Extra addresses to reach the mesh (e.g. remote agents). */
  bootstrap: string[];
}

/** `$SHOAL_HOME`, default `~/.shoal`. */
export function shoalHome(): string {
  return process.env.SHOAL_HOME || join(homedir(), ".shoal");
}

/** A session on disk. */
export class Session {
  readonly name: string;
  readonly dir: string;
  record: SessionRecord;

  constructor(name: string, dir: string, record: SessionRecord) {
    this.name = name;
    this.dir = dir;
    this.record = record;
  }

  get swarmKeyFile(): string {
    return join(this.dir, "swarm.key");
  }

  /** Reads and checks the swarm key. */
  swarmKey(): Promise<Uint8Array> {
    return readSwarmKey(this.swarmKeyFile);
  }

  /** Addresses of the session's agents that look alive, then recorded extra ones. */
  async bootstrapAddrs(): Promise<string[]> {
    const addrs: string[] = [];
    for (const job of this.record.jobs) {
      if (!job.dataDir) {
        addrs.push(...(job.addrs ?? [])); // remote agents (ssh, slurm): addresses their pilot reported
        continue;
      }
      const state = await readStateFile(job.dataDir);
      if (state?.status === "running") addrs.push(...state.addrs);
      else if (!state) addrs.push(...(job.addrs ?? []));
    }
    return [...new Set([...addrs, ...this.record.bootstrap])];
  }

  /** What a plug-in needs to add agents to this session. */
  async ref(): Promise<SessionRef> {
    return {
      name: this.name,
      id: this.record.id,
      dir: this.dir,
      swarmKeyFile: this.swarmKeyFile,
      bootstrap: await this.bootstrapAddrs(),
    };
  }

  /** Writes `session.json` atomically. */
  async save(): Promise<void> {
    const file = join(this.dir, "session.json");
    await writeFile(`${file}.tmp`, JSON.stringify(this.record, null, 2) + "\n");
    await rename(`${file}.tmp`, file);
  }

  /** Removes the agents' data dirs of jobs that are gone, keeping their logs' parent when asked. */
  async forgetJobs(ids: Set<string>): Promise<void> {
    this.record.jobs = this.record.jobs.filter((j) => !ids.has(j.id));
    await this.save();
  }
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new RangeError(`Session name "${name}" is invalid: use 1–128 of a-z A-Z 0-9 # @ ~ _ -`);
  }
}

/** Directory of session `name`. */
export function sessionDir(name: string): string {
  return join(shoalHome(), "sessions", name);
}

/** Opens an existing session. */
export async function openSession(name: string): Promise<Session> {
  checkName(name);
  const dir = sessionDir(name);
  let text: string;
  try {
    text = await readFile(join(dir, "session.json"), "utf8");
  } catch (cause) {
    throw new SessionNotFoundError(
      name,
      `Session "${name}" does not exist under ${
        join(shoalHome(), "sessions")
      }; start it with \`shoal up --session ${name}\``,
      { cause },
    );
  }
  let record: SessionRecord;
  try {
    record = { bootstrap: [], jobs: [], ...JSON.parse(text) } as SessionRecord;
  } catch (cause) {
    throw new SessionNotFoundError(
      name,
      `Session file "${
        join(dir, "session.json")
      }" is corrupt; remove the session with \`shoal down --session ${name} --purge\``,
      { cause },
    );
  }
  const session = new Session(name, dir, record);
  await session.swarmKey();
  return session;
}

/** Opens session `name`, creating it (with a new swarm key) when it does not exist. */
export async function openOrCreateSession(name: string): Promise<Session> {
  checkName(name);
  const dir = sessionDir(name);
  if (existsSync(join(dir, "session.json"))) return await openSession(name);
  await mkdir(join(dir, "agents"), { recursive: true, mode: 0o700 });
  await writeSwarmKey(join(dir, "swarm.key"));
  const session = new Session(name, dir, {
    name,
    id: crypto.randomUUID(),
    createdAt: Date.now(),
    jobs: [],
    bootstrap: [],
  });
  await session.save();
  return session;
}

/** Deletes a session's directory. */
export async function purgeSession(name: string): Promise<void> {
  checkName(name);
  await rm(sessionDir(name), { recursive: true, force: true });
}

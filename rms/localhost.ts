/**
 * The `localhost` plug-in: agents as detached processes on this machine, each with its own data dir
 * under the session.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { closeSync, mkdirSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { join } from "node:path";
import { readStateFile } from "../agent/mod.ts";
import { agentEnv } from "./agent_env.ts";
import { AgentStartError } from "./errors.ts";
import { cmdlineIncludes, isAlive, terminate } from "./process_tree.ts";
import type { AgentJob, CancelOptions, CancelResult, JobStatus, RmsPlugin, SubmitRequest } from "./types.ts";

const START_TIMEOUT_MS = 30_000;
/** Agents starting at once: an agent needs about 0.1 s of CPU to listen, then joins while others start. */
const START_PARALLELISM = Math.max(2, availableParallelism() * 2);

function tail(file: string, lines = 5): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function randomItem<T>(xs: readonly T[]): T | undefined {
  return xs[Math.floor(Math.random() * xs.length)];
}

async function startOne(req: SubmitRequest, index: number, bootstrap: string[]): Promise<AgentJob> {
  const name = `local-${Date.now().toString(36)}-${index}`;
  const dataDir = join(req.session.dir, "agents", name);
  mkdirSync(dataDir, { recursive: true });
  const args = [
    ...req.self.args,
    "agent",
    "--data-dir",
    dataDir,
    "--swarm-key",
    req.session.swarmKeyFile,
    "--slots",
    String(req.slots),
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--log-file",
    join(dataDir, "agent.log"),
    "--quiet",
    "--session-id",
    req.session.id,
    ...bootstrap.flatMap((a) => ["--bootstrap", a]),
    ...(req.group ? ["--group", req.group] : []),
    ...Object.entries(req.labels ?? {}).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
    ...(req.commandHandler ? ["--command-handler", req.commandHandler] : []),
    ...(req.metrics ? ["--metrics", req.metrics] : []),
  ];
  const errFile = join(dataDir, "agent.stderr");
  const fd = openSync(errFile, "a");
  const child = spawn(req.self.command, args, { detached: true, stdio: ["ignore", fd, fd], env: agentEnv() });
  closeSync(fd);
  let exited: string | undefined;
  child.on("exit", (code, sig) => (exited = sig ? `signal ${sig}` : `exit code ${code}`));
  child.on("error", (err) => (exited = err.message));
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (true) {
    if (exited !== undefined) {
      throw new AgentStartError("localhost", `Agent ${index} exited at start (${exited})`, tail(errFile));
    }
    const state = await readStateFile(dataDir);
    if (state && state.pid === child.pid && state.addrs.length > 0) {
      return {
        rms: "localhost",
        id: String(child.pid),
        host: hostname(),
        dataDir,
        peerId: state.peerId,
        addrs: state.addrs,
        submittedAt: Date.now(),
      };
    }
    if (req.signal?.aborted) {
      if (child.pid) process.kill(child.pid, "SIGKILL");
      throw new AgentStartError(
        "localhost",
        `Agent ${index} was still starting when the submission was stopped (${
          (req.signal.reason as Error | undefined)?.name === "TimeoutError" ? "its timeout" : "interrupted"
        })`,
        tail(errFile),
      );
    }
    if (Date.now() > deadline) {
      if (child.pid) process.kill(child.pid, "SIGKILL");
      throw new AgentStartError(
        "localhost",
        `Agent ${index} did not start listening within ${START_TIMEOUT_MS / 1000} s`,
        tail(errFile),
      );
    }
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** Creates the localhost plug-in. */
export function createLocalhostRms(): RmsPlugin {
  return {
    name: "localhost",
    async submit(req: SubmitRequest): Promise<AgentJob[]> {
      if (!Number.isInteger(req.count) || req.count < 1) {
        throw new RangeError(`Agent count "${req.count}" < 1`);
      }
      const jobs: AgentJob[] = [];
      const emit = req.onEvent ?? (() => {});
      let next = 0;
      if (req.session.bootstrap.length === 0) {
        const first = await startOne(req, next++, []);
        jobs.push(first);
        emit({ type: "agent:started", job: first });
      }
      const seeds = req.session.bootstrap.length ? req.session.bootstrap : jobs[0]!.addrs ?? [];
      // A few at a time, each given the first agent and up to 8 others already up, of which its bootstrap
      // dials 3 at random: started all at once, 100 agents made a 2-core machine thrash for a minute, and
      // all joining through the first agent made it the hub of the start-up (starved, it was declared dead).
      const failed: Error[] = [];
      const worker = async () => {
        while (next < req.count && !req.signal?.aborted) {
          const index = next++;
          const others = Array.from({ length: 8 }, () => randomItem(jobs)).flatMap((j) => j?.addrs ?? []);
          try {
            const job = await startOne(req, index, [...new Set([...seeds, ...others])]);
            jobs.push(job);
            emit({ type: "agent:started", job });
          } catch (err) {
            failed.push(err as Error);
            emit({ type: "agent:failed", failure: { host: hostname(), reason: (err as Error).message } });
          }
        }
      };
      await Promise.all(Array.from({ length: START_PARALLELISM }, worker));
      if (req.signal?.aborted && jobs.length < (req.minCount ?? req.count)) {
        await this.cancel(jobs, { graceMs: 2_000 });
        const why = (req.signal.reason as Error | undefined)?.name === "TimeoutError"
          ? "before the timeout; give more time with --timeout"
          : "before it was interrupted";
        throw new AgentStartError("localhost", `Started ${jobs.length} of ${req.count} agent(s) ${why}`, "");
      }
      if (failed.length > 0 && jobs.length < (req.minCount ?? req.count)) {
        await this.cancel(jobs, { graceMs: 2_000 });
        throw failed[0];
      }
      return jobs;
    },
    status(jobs: AgentJob[]): Promise<JobStatus[]> {
      return Promise.resolve(jobs.map((j) => ({
        id: j.id,
        state: isAlive(Number(j.id)) && cmdlineIncludes(Number(j.id), j.dataDir ?? "agent")
          ? "running"
          : "exited",
      })));
    },
    async cancel(jobs: AgentJob[], options: CancelOptions = {}): Promise<CancelResult[]> {
      return await Promise.all(jobs.map((j) => {
        const pid = Number(j.id);
        if (!cmdlineIncludes(pid, j.dataDir ?? "agent")) return { id: j.id, outcome: "gone" as const };
        return terminate(pid, { ...options, id: j.id });
      }));
    },
  };
}

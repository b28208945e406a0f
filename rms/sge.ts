/**
 * The `sge` plug-in (Son of Grid Engine, Univa/Altair Grid Engine): one `qsub` job whose tasks run a pilot
 * each — an array job (`-t 1-N`, the default), or with `parallelEnvironment` a parallel job
 * (`-pe PE N`) whose master starts a pilot per granted slot on its host with `qrsh -inherit`. As with
 * Slurm, the pilots find the binary through a directory shared with the submitter, start the agent as
 * their child and report in their output files there; task 1 founds the mesh when there is none. Jobs
 * are submitted with `-notify`, so `qdel` first sends the pilots SIGUSR2 and each stops its agent
 * cleanly before Grid Engine's SIGKILL; `qstat` reports their state.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { sha256File, shippableBinary } from "./_binary.ts";
import { execTool, lastLine } from "./_exec.ts";
import { readPilotOutputs, type TaskOutcome } from "./_pilot_output.ts";
import { parseQstat, type QueueEntry, stateOf } from "./_qstat.ts";
import { CommonConfigEntries, parseJsonConfig, readConfigFile } from "./config.ts";
import { RmsConfigError, RmsToolMissingError, SubmitError } from "./errors.ts";
import { renderPilot, shellQuote, unameArch, unameOs } from "./pilot.ts";
import { pilotStepsFor } from "./pilots.ts";
import type {
  AgentFailure,
  AgentJob,
  CancelOptions,
  CancelResult,
  JobStatus,
  PilotStepsRequest,
  RmsConfig,
  RmsPlugin,
  SubmitRequest,
} from "./types.ts";

/** The sge plug-in's config (`-c FILE`, JSON). */
export const SgeConfigSchema = v.strictObject({
  /** Cluster queue (`qsub -q`); also the pilot's resource (`sge:<queue>`) unless one is given. */
  queue: v.optional(v.string()),
  /** Project (`qsub -P`). */
  project: v.optional(v.string()),
  /** Wall time (`qsub -l h_rt=…`), e.g. `"1:00:00"`. */
  time: v.optional(v.string()),
  /** A parallel environment: one parallel job of N slots instead of an array job of N tasks. */
  parallelEnvironment: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** More qsub options, e.g. `["-l", "mem_free=4G"]`. */
  qsubArgs: v.optional(v.array(v.string())),
  /** Node-local work dir for the binary and the agents' data dirs (default `/tmp/shoal-<uid>`). */
  workDir: v.optional(v.string()),
  /** Directory the submitter and the nodes share, for pilot scripts and reports (default: the session's). */
  sharedDir: v.optional(v.string()),
  /** Seconds a job may stay pending before it is given up (default 300). */
  queueTimeout: v.optional(v.pipe(v.number(), v.minValue(1))),
  /** Directory holding qsub, qstat and qdel (default: PATH). */
  sgeBin: v.optional(v.string()),
  ...CommonConfigEntries,
});

/** The sge plug-in's config. */
export type SgeConfig = v.InferOutput<typeof SgeConfigSchema>;

interface SgeRemote {
  jobId: string;
  task: number;
  dataDir: string;
  /** True for an array job (a task is `qdel JOB -t TASK`); false for a parallel one. */
  array: boolean;
  sgeBin?: string;
}

function tool(name: string, bin: string | undefined): string {
  return bin ? join(bin, name) : name;
}

async function sgeTool(name: string, bin: string | undefined, args: string[], timeoutMs = 30_000) {
  const r = await execTool(tool(name, bin), args, { timeoutMs });
  if (r.spawnError?.code === "ENOENT") {
    throw new RmsToolMissingError(
      name,
      `"${tool(name, bin)}" is not installed on ${hostname()}; run shoal where Grid Engine's client tools ` +
        `are, or set "sgeBin" in the sge config`,
    );
  }
  return r;
}

/** This user's jobs (qstat's default without `-u`): a big cluster's whole queue is many thousand lines. */
async function queueEntries(bin: string | undefined): Promise<Map<string, QueueEntry[]>> {
  const r = await sgeTool("qstat", bin, ["-g", "d"]);
  if (r.code !== 0) throw new Error(`qstat failed: ${lastLine(r.stderr) || `exit code ${r.code}`}`);
  return parseQstat(r.stdout);
}

/** The entry of task `task` of job `jobId`, or of the job itself for a parallel one. */
function entryOf(entries: Map<string, QueueEntry[]>, remote: SgeRemote): QueueEntry | undefined {
  const list = entries.get(remote.jobId);
  if (!list) return undefined;
  return remote.array ? list.find((e) => e.tasks?.includes(remote.task)) : list[0];
}

function checkConfig(config: RmsConfig | undefined): SgeConfig {
  const r = v.safeParse(SgeConfigSchema, config ?? {});
  if (!r.success) {
    const path = r.issues[0].path?.map((p: { key: unknown }) => String(p.key)).join(".") ?? "";
    throw new RmsConfigError("sge config", `${path ? `"${path}": ` : ""}${r.issues[0].message}`);
  }
  return r.output;
}

function remoteOf(job: AgentJob): SgeRemote {
  const r = job.remote as Partial<SgeRemote> | undefined;
  if (!r?.jobId) throw new TypeError(`Job "${job.id}" has no Grid Engine job ID`);
  return r as SgeRemote;
}

/** The steps of the sge plug-in's pilots (the resource: the request's, else the queue). */
function sgePilotSteps(req: PilotStepsRequest) {
  const config = checkConfig(req.config);
  return pilotStepsFor("sge", "foreground", req, config, config.queue);
}

/**
 * The pilot of each task: `$1` (a parallel job's master gives it) or `SGE_TASK_ID` numbers it from 1;
 * `dir` is shared with the submitter (where task 1 reports, for the others to bootstrap).
 */
async function renderSgePilot(req: SubmitRequest, config: SgeConfig, dir: string): Promise<string> {
  const { steps } = sgePilotSteps(req);
  const file = shippableBinary(req.self, config.binary, "sge");
  const founds = req.session.bootstrap.length === 0;
  return renderPilot({
    mode: "foreground",
    steps,
    swarmKey: await readFile(req.session.swarmKeyFile, "utf8"),
    vars: {
      SHOAL_SESSION: req.session.name,
      SHOAL_SESSION_ID: req.session.id,
      SHOAL_SLOTS: String(req.slots),
      SHOAL_GROUP: req.group ?? "",
      SHOAL_HOST: "",
      SHOAL_LABELS: Object.entries(req.labels ?? {}).map(([k, val]) => `${k}=${val}`).join("\n"),
      SHOAL_COMMAND_HANDLER: req.commandHandler ?? "",
      SHOAL_METRICS: req.metrics ?? "",
      SHOAL_LISTEN: config.listen ?? "/ip4/0.0.0.0/tcp/0",
      SHOAL_BOOTSTRAP: req.session.bootstrap.join(" "),
      SHOAL_BIN_SHA256: await sha256File(file),
      SHOAL_BIN_SOURCE: file,
      SHOAL_START_TIMEOUT: String(config.startTimeout ?? 60),
      SHOAL_EXPECT_OS: unameOs(),
      SHOAL_EXPECT_ARCH: unameArch(),
      SHOAL_PILOTS_IN_JOB: String(req.count),
    },
    rawVars: {
      // Defaults for a pilot run by hand (`shoal pilot script`), outside a job.
      SHOAL_TASK: '"${1:-${SGE_TASK_ID:-1}}"',
      SHOAL_JOB: '"${JOB_ID:-$$}"',
      SHOAL_WORK_DIR: config.workDir ? shellQuote(config.workDir) : '"/tmp/shoal-$(id -u)"',
      SHOAL_BIN: '"$SHOAL_WORK_DIR/bin/shoal"',
      SHOAL_AGENT_NAME: '"sge-$SHOAL_JOB-$SHOAL_TASK"',
      SHOAL_DATA_DIR: `"$SHOAL_WORK_DIR/sessions/"${shellQuote(req.session.name)}/"$SHOAL_AGENT_NAME"`,
      SHOAL_FOUNDER_OUTPUT: founds
        ? `"$( [ "$SHOAL_TASK" = 1 ] || echo ${shellQuote(dir)}/pilot-"$SHOAL_JOB"-1.out )"`
        : '""',
    },
    ...(config.env ? { env: config.env } : {}),
  });
}

/** A parallel job's script: a pilot per granted slot, on its host, each with its own output files. */
function parallelMaster(dir: string): string {
  const d = shellQuote(dir);
  return [
    "#!/bin/bash",
    "# shoal: one pilot per slot of the parallel job; a failed pilot does not take the others down.",
    "pids=()",
    `trap 'kill -USR2 "\${pids[@]}" 2>/dev/null' USR2 TERM`,
    "i=0",
    "while read -r host slots _; do",
    "  for ((k = 0; k < slots; k++)); do",
    "    i=$((i + 1))",
    `    qrsh -inherit -nostdin "$host" /bin/bash ${d}/pilot.sh "$i" \\`,
    `      >${d}/pilot-"$JOB_ID"-"$i".out 2>${d}/pilot-"$JOB_ID"-"$i".err &`,
    "    pids+=($!)",
    "  done",
    'done <"$PE_HOSTFILE"',
    'for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do wait "$p"; done; done',
  ].join("\n") + "\n";
}

/** Creates the sge plug-in. */
export function createSgeRms(): RmsPlugin {
  return {
    name: "sge",
    async loadConfig(file: string): Promise<RmsConfig> {
      return parseJsonConfig(file, await readConfigFile(file), SgeConfigSchema) as RmsConfig;
    },
    defaultCount: () => 1,
    pilotSteps: sgePilotSteps,
    async pilotScript(req: SubmitRequest): Promise<string> {
      const config = checkConfig(req.config);
      return await renderSgePilot(req, config, config.sharedDir ?? join(req.session.dir, "sge"));
    },
    async submit(req: SubmitRequest): Promise<AgentJob[]> {
      if (!Number.isInteger(req.count) || req.count < 1) {
        throw new RangeError(`Agent count "${req.count}" < 1`);
      }
      const config = checkConfig(req.config);
      const min = req.minCount ?? req.count;
      if (min < 1 || min > req.count) {
        throw new RangeError(
          `Minimum agent count "${min}" is not between 1 and the agent count ${req.count}`,
        );
      }
      sgePilotSteps(req); // a bad pilot is reported before anything is written or submitted
      const bin = config.sgeBin;
      const emit = req.onEvent ?? (() => {});
      const startTimeoutS = config.startTimeout ?? 60;
      const queueTimeoutMs = (config.queueTimeout ?? 300) * 1000;
      const array = !config.parallelEnvironment;
      const dir = join(config.sharedDir ?? join(req.session.dir, "sge"), Date.now().toString(36));
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, "pilot.sh"), await renderSgePilot(req, config, dir), { mode: 0o700 });
      if (!array) writeFileSync(join(dir, "master.sh"), parallelMaster(dir), { mode: 0o700 });

      const args = [
        "-terse",
        "-notify",
        "-r",
        "n",
        "-b",
        "n",
        "-S",
        "/bin/bash",
        "-N",
        `shoal-${req.session.name}`.replace(/[^A-Za-z0-9_.-]/g, "_"),
        "-wd",
        dir,
        ...(array
          ? [
            "-t",
            `1-${req.count}`,
            "-o",
            join(dir, "pilot-$JOB_ID-$TASK_ID.out"),
            "-e",
            join(dir, "pilot-$JOB_ID-$TASK_ID.err"),
          ]
          : [
            "-pe",
            config.parallelEnvironment!,
            String(req.count),
            "-o",
            join(dir, "master-$JOB_ID.out"),
            "-e",
            join(dir, "master-$JOB_ID.err"),
          ]),
        ...(config.queue ? ["-q", config.queue] : []),
        ...(config.project ? ["-P", config.project] : []),
        ...(config.time ? ["-l", `h_rt=${config.time}`] : []),
        ...(config.qsubArgs ?? []),
        join(dir, array ? "pilot.sh" : "master.sh"),
      ];
      const sub = await sgeTool("qsub", bin, args, 60_000);
      if (sub.code !== 0) {
        const failure = {
          host: hostname(),
          reason: `qsub failed: ${lastLine(sub.stderr) || `exit code ${sub.code}`}`,
        };
        emit({ type: "agent:failed", failure });
        throw new SubmitError(failure.reason, [failure]);
      }
      const jobId = sub.stdout.trim().split(".")[0]!;
      emit({ type: "job:submitted", id: jobId, agents: req.count });
      const remoteFor = (task: number, dataDir: string): SgeRemote => ({
        jobId,
        task,
        dataDir,
        array,
        ...(bin ? { sgeBin: bin } : {}),
      });

      // Wait for every pilot's report (or failure), the job's end, or a deadline.
      const submitted = Date.now();
      let runningSince: number | undefined;
      let lastQueue = 0;
      let inQueue = new Map<number, string>(); // task → state code, of the tasks still queued or running
      let tasks = new Map<number, TaskOutcome>();
      let giveUp: string | undefined;
      const announced = new Set<number>();
      const jobs: AgentJob[] = [];
      const pendingNow = () => [...inQueue].filter(([, s]) => stateOf(s) === "pending").map(([t]) => t);
      while (true) {
        tasks = readPilotOutputs(dir, jobId);
        for (const [t, o] of tasks) {
          if (!o.report || announced.has(t)) continue;
          announced.add(t);
          const job: AgentJob = {
            rms: "sge",
            id: `${jobId}.${t}`,
            host: o.report.host,
            peerId: o.report.agent.peerId,
            addrs: o.report.agent.addrs,
            submittedAt: submitted,
            remote: { ...remoteFor(t, o.report.dataDir) } satisfies SgeRemote,
          };
          jobs.push(job);
          emit({ type: "agent:started", job });
        }
        const settled = [...tasks.values()].filter((o) => o.report || o.fail).length;
        if (settled >= req.count) break;
        if (Date.now() - lastQueue >= 1_000) {
          lastQueue = Date.now();
          const list = (await queueEntries(bin)).get(jobId);
          if (!list) break; // the job ended
          inQueue = new Map(list.flatMap((e) => (e.tasks ?? [0]).map((t) => [t, e.state] as const)));
          if (list.some((e) => stateOf(e.state) === "running")) runningSince ??= Date.now();
          const held = list.find((e) => e.state.includes("E"));
          if (held) {
            giveUp = `job ${jobId} is in error state "${held.state}" (qstat -j ${jobId} says why)`;
            break;
          }
        }
        if (req.signal?.aborted) {
          giveUp = "the submission was interrupted";
          break;
        }
        const waited = Date.now() - submitted;
        if (!runningSince && waited > queueTimeoutMs) {
          giveUp = `job ${jobId} did not start within ${queueTimeoutMs / 1000} s (${
            [...new Set(inQueue.values())].join(", ") || "gone"
          })`;
          break;
        }
        // Enough agents, the rest still waiting for slots: go on without them.
        if (jobs.length >= min && waited > queueTimeoutMs && pendingNow().length > 0) {
          giveUp = `job ${jobId}'s tasks ${pendingNow().join(", ")} did not start within ${
            queueTimeoutMs / 1000
          } s`;
          break;
        }
        if (runningSince && Date.now() - runningSince > (startTimeoutS * 2 + 30) * 1000) {
          giveUp = `the pilots of job ${jobId} did not all report within ${startTimeoutS * 2 + 30} s`;
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }

      const failures: AgentFailure[] = [];
      const fail = (f: AgentFailure) => {
        failures.push(f);
        emit({ type: "agent:failed", failure: f });
      };
      for (let t = 1; t <= req.count; t++) {
        const o = tasks.get(t);
        if (o?.report) continue;
        const reason = o?.fail?.reason ?? giveUp ?? (o?.errTail ||
          `the pilot ended during step "${o?.step ?? "start"}"`);
        fail({
          host: `task ${t} of job ${jobId}`,
          job: `${jobId}.${t}`,
          step: o?.fail?.step ?? o?.step ?? "start",
          reason,
        });
      }
      if (jobs.length < min) {
        await sgeTool("qdel", bin, [jobId]);
        throw new SubmitError(
          `Only ${jobs.length} of ${req.count} agents started in Grid Engine job ${jobId} (at least ${min} needed): ${
            failures[0]?.reason ?? ""
          }`,
          failures,
        );
      }
      // Tasks that never reported must not start an agent later, unrecorded.
      const unreported = [...inQueue.keys()].filter((t) => !announced.has(t) && t > 0);
      if (array && unreported.length) await sgeTool("qdel", bin, [jobId, "-t", unreported.join(",")]);
      return jobs;
    },

    async status(jobs: AgentJob[]): Promise<JobStatus[]> {
      const out = new Map<string, JobStatus>();
      for (const [bin, group] of Map.groupBy(jobs, (j) => remoteOf(j).sgeBin ?? "")) {
        let entries: Map<string, QueueEntry[]> | undefined;
        let detail = "";
        try {
          entries = await queueEntries(bin || undefined);
        } catch (err) {
          detail = (err as Error).message;
        }
        for (const job of group) {
          const e = entries && entryOf(entries, remoteOf(job));
          const state: JobStatus["state"] = !entries ? "unknown" : !e ? "exited" : stateOf(e.state);
          out.set(job.id, { id: job.id, state, ...(detail ? { detail } : e ? { detail: e.state } : {}) });
        }
      }
      return jobs.map((j) => out.get(j.id)!);
    },

    async cancel(jobs: AgentJob[], options: CancelOptions = {}): Promise<CancelResult[]> {
      const graceMs = options.graceMs ?? 10_000;
      const out = new Map<string, CancelResult>();
      const byJob = Map.groupBy(jobs, (j) => `${remoteOf(j).sgeBin ?? ""}\0${remoteOf(j).jobId}`);
      await Promise.all([...byJob.values()].map(async (group) => {
        const first = remoteOf(group[0]!);
        const bin = first.sgeBin;
        const set = (js: AgentJob[], r: Omit<CancelResult, "id">) =>
          js.forEach((j) => out.set(j.id, { id: j.id, ...r }));
        try {
          const live = (entries: Map<string, QueueEntry[]>) =>
            group.filter((j) => entryOf(entries, remoteOf(j)));
          const running = live(await queueEntries(bin));
          set(group.filter((j) => !running.includes(j)), { outcome: "gone" });
          if (running.length === 0) return;
          // A parallel job's pilots go together; an array job's tasks one by one.
          const target = first.array
            ? [first.jobId, "-t", running.map((j) => remoteOf(j).task).join(",")]
            : [first.jobId];
          const del = await sgeTool("qdel", bin, target);
          if (del.code !== 0) {
            return set(running, {
              outcome: "failed",
              detail: `qdel ${target.join(" ")}: ${lastLine(del.stderr)}`,
            });
          }
          const deadline = Date.now() + graceMs;
          let left = running;
          while (Date.now() < deadline && !options.signal?.aborted) {
            left = live(await queueEntries(bin)).filter((j) => running.includes(j));
            set(running.filter((j) => !left.includes(j)), { outcome: "terminated" });
            if (left.length === 0) return;
            await new Promise((r) => setTimeout(r, 200));
          }
          // Past the grace period: Grid Engine's forced deletion (SIGKILL, the job forgotten).
          await sgeTool("qdel", bin, ["-f", ...target]);
          const hard = Date.now() + 10_000;
          while (Date.now() < hard && live(await queueEntries(bin)).some((j) => left.includes(j))) {
            await new Promise((r) => setTimeout(r, 200));
          }
          set(left, { outcome: "killed" });
        } catch (err) {
          set(group.filter((j) => !out.has(j.id)), { outcome: "failed", detail: (err as Error).message });
        }
      }));
      return jobs.map((j) => out.get(j.id)!);
    },
  };
}

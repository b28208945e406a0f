/**
 * The `slurm` plug-in: one `sbatch` job whose batch script `srun`s a pilot per allocated node
 * (`--nodes=min-max`, like DDS's `--min-instances`). The pilots find the `shoal` binary through a
 * directory the nodes share with the submitter (copying it to node-local disk once per host, checked by
 * hash), start the agent as their child (so Slurm accounts and stops it) and report its peer ID and
 * addresses in their Slurm output file in that shared directory, which the submitter reads. `scancel`
 * stops the agents; they handle SIGTERM cleanly.
 *
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { sha256File, shippableBinary } from "./_binary.ts";
import { execTool, lastLine } from "./_exec.ts";
import { readPilotOutputs, type TaskOutcome } from "./_pilot_output.ts";
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

/** The slurm plug-in's config (`--rms-config FILE`, JSON). */
export const SlurmConfigSchema = v.strictObject({
  partition: v.optional(v.string()),
  account: v.optional(v.string()),
  /** Wall time, in any form sbatch takes (`--time`). */
  time: v.optional(v.string()),
  /** More sbatch options, e.g. `["--constraint=ib", "--exclusive"]`. */
  sbatchArgs: v.optional(v.array(v.string())),
  /** Agents per node (default 1). */
  agentsPerNode: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /** Node-local work dir for the binary and the agents' data dirs (default `/tmp/shoal-<uid>`). */
  workDir: v.optional(v.string()),
  /** Directory the submitter and the nodes share, for pilot scripts and reports (default: the session's). */
  sharedDir: v.optional(v.string()),
  /** Seconds a job may stay pending before it is given up (default 300). */
  queueTimeout: v.optional(v.pipe(v.number(), v.minValue(1))),
  /** Directory holding sbatch, squeue and scancel (default: PATH). */
  slurmBin: v.optional(v.string()),
  ...CommonConfigEntries,
});

/** The slurm plug-in's config. */
export type SlurmConfig = v.InferOutput<typeof SlurmConfigSchema>;

interface SlurmRemote {
  jobId: string;
  task: number;
  dataDir: string;
  slurmBin?: string;
}

function tool(name: string, bin: string | undefined): string {
  return bin ? join(bin, name) : name;
}

async function slurmTool(name: string, bin: string | undefined, args: string[], timeoutMs = 30_000) {
  const r = await execTool(tool(name, bin), args, { timeoutMs });
  if (r.spawnError?.code === "ENOENT") {
    throw new RmsToolMissingError(
      name,
      `"${tool(name, bin)}" is not installed on ${hostname()}; run shoal where Slurm's client tools are, ` +
        `or set "slurmBin" in the slurm config`,
    );
  }
  return r;
}

/** Slurm job states by job ID (absent: no longer in the queue). */
async function queueStates(
  ids: string[],
  bin?: string,
): Promise<Map<string, { state: string; reason: string }>> {
  const r = await slurmTool("squeue", bin, ["-h", "-o", "%i|%T|%r", "-j", ids.join(",")]);
  if (r.code !== 0 && !/Invalid job id/i.test(r.stderr)) {
    throw new Error(`squeue failed: ${lastLine(r.stderr) || `exit code ${r.code}`}`);
  }
  const out = new Map<string, { state: string; reason: string }>();
  for (const line of r.stdout.split("\n")) {
    const [id, state, reason] = line.trim().split("|");
    if (id && state) out.set(id, { state, reason: reason ?? "" });
  }
  return out;
}

function checkConfig(config: RmsConfig | undefined): SlurmConfig {
  const r = v.safeParse(SlurmConfigSchema, config ?? {});
  if (!r.success) {
    const path = r.issues[0].path?.map((p: { key: unknown }) => String(p.key)).join(".") ?? "";
    throw new RmsConfigError("slurm config", `${path ? `"${path}": ` : ""}${r.issues[0].message}`);
  }
  return r.output;
}

function remoteOf(job: AgentJob): SlurmRemote {
  const r = job.remote as Partial<SlurmRemote> | undefined;
  if (!r?.jobId) throw new TypeError(`Job "${job.id}" has no Slurm job ID`);
  return r as SlurmRemote;
}

function tail(file: string): string {
  try {
    return lastLine(readFileSync(file, "utf8"));
  } catch {
    return "";
  }
}

/** The steps of the slurm plug-in's pilots (the resource: the request's, else the partition). */
function slurmPilotSteps(req: PilotStepsRequest) {
  const config = checkConfig(req.config);
  return pilotStepsFor("slurm", "foreground", req, config, config.partition);
}

/** The pilot script of a Slurm job's tasks; `dir` is shared with the submitter (the founder's report). */
async function renderSlurmPilot(req: SubmitRequest, config: SlurmConfig, dir: string): Promise<string> {
  const { steps } = slurmPilotSteps(req);
  const file = shippableBinary(req.self, config.binary, "slurm");
  const sha256 = await sha256File(file);
  const swarmKey = await readFile(req.session.swarmKeyFile, "utf8");
  const startTimeoutS = config.startTimeout ?? 60;
  const founds = req.session.bootstrap.length === 0;
  return renderPilot({
    mode: "foreground",
    steps,
    swarmKey,
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
      SHOAL_BIN_SHA256: sha256,
      SHOAL_BIN_SOURCE: file,
      SHOAL_START_TIMEOUT: String(startTimeoutS),
      SHOAL_EXPECT_OS: unameOs(),
      SHOAL_EXPECT_ARCH: unameArch(),
    },
    rawVars: {
      SHOAL_WORK_DIR: config.workDir ? shellQuote(config.workDir) : '"/tmp/shoal-$(id -u)"',
      SHOAL_BIN: '"$SHOAL_WORK_DIR/bin/shoal"',
      // Defaults for a pilot run by hand (`shoal pilot script`), outside a job.
      SHOAL_AGENT_NAME: '"slurm-${SLURM_JOB_ID:-$$}-${SLURM_PROCID:-0}"',
      SHOAL_DATA_DIR: `"$SHOAL_WORK_DIR/sessions/"${shellQuote(req.session.name)}/"$SHOAL_AGENT_NAME"`,
      // Without a mesh to join, task 0 founds it and the other tasks bootstrap to what it reports.
      SHOAL_FOUNDER_OUTPUT: founds
        ? `"$( [ "\${SLURM_PROCID:-0}" = 0 ] || echo ${shellQuote(dir)}/pilot-"$SLURM_JOB_ID"-0.out )"`
        : '""',
    },
    ...(config.env ? { env: config.env } : {}),
  });
}

/** Creates the slurm plug-in. */
export function createSlurmRms(): RmsPlugin {
  return {
    name: "slurm",
    async loadConfig(file: string): Promise<RmsConfig> {
      return parseJsonConfig(file, await readConfigFile(file), SlurmConfigSchema) as RmsConfig;
    },
    defaultCount: () => 1,
    pilotSteps: slurmPilotSteps,
    async pilotScript(req: SubmitRequest): Promise<string> {
      const config = checkConfig(req.config);
      return await renderSlurmPilot(req, config, config.sharedDir ?? join(req.session.dir, "slurm"));
    },
    submit: submitSlurm,
    status: slurmStatus,
    cancel: cancelSlurm,
  };
}

/** One submission: its config, the minimum that must start, its job directory and its events. */
interface SlurmSubmission {
  req: SubmitRequest;
  config: SlurmConfig;
  min: number;
  dir: string;
  emit: NonNullable<SubmitRequest["onEvent"]>;
}

/** What the submitter saw of a job's pilots when it stopped waiting. */
interface PilotsSeen {
  tasks: Map<number, TaskOutcome>;
  jobs: AgentJob[];
  /** Why the submitter stopped waiting early, if it did. */
  giveUp?: string;
}

async function submitSlurm(req: SubmitRequest): Promise<AgentJob[]> {
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
  const dir = join(config.sharedDir ?? join(req.session.dir, "slurm"), Date.now().toString(36));
  const sub: SlurmSubmission = { req, config, min, dir, emit: req.onEvent ?? (() => {}) };
  await writeJobFiles(sub);
  const jobId = await sbatch(sub);
  const seen = await waitForPilots(sub, jobId);
  const failures = pilotFailures(sub, jobId, seen);
  const { jobs, giveUp } = seen;
  const bin = config.slurmBin;
  if (giveUp && jobs.length < min) await slurmTool("scancel", bin, [jobId]);
  if (jobs.length < min) {
    if (!giveUp) await slurmTool("scancel", bin, [jobId]);
    throw new SubmitError(
      `Only ${jobs.length} of ${req.count} agents started in Slurm job ${jobId} (at least ${min} needed): ${
        failures[0]?.reason ?? ""
      }`,
      failures,
    );
  }
  return jobs;
}

/** The job directory: the pilot script and the batch script that `srun`s it once per task. */
async function writeJobFiles({ req, config, dir }: SlurmSubmission): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "pilot.sh"), await renderSlurmPilot(req, config, dir), { mode: 0o700 });
  writeFileSync(
    join(dir, "batch.sh"),
    [
      "#!/bin/bash",
      "# shoal: one pilot per task; a failed pilot does not take the others down.",
      `exec srun --kill-on-bad-exit=0 --output=${shellQuote(dir)}/pilot-%j-%t.out ` +
      `--error=${shellQuote(dir)}/pilot-%j-%t.err bash ${shellQuote(dir)}/pilot.sh`,
    ].join("\n") + "\n",
    { mode: 0o700 },
  );
}

/** Submits the batch job; its Slurm job ID. */
async function sbatch(sub: SlurmSubmission): Promise<string> {
  const { req, config, min, dir, emit } = sub;
  const perNode = config.agentsPerNode ?? 1;
  const nodesMax = Math.ceil(req.count / perNode);
  const nodesMin = Math.ceil(min / perNode);
  const args = [
    "--parsable",
    `--job-name=shoal-${req.session.name}`,
    `--nodes=${nodesMin === nodesMax ? nodesMax : `${nodesMin}-${nodesMax}`}`,
    `--ntasks-per-node=${perNode}`,
    ...(perNode > 1 && min === req.count ? [`--ntasks=${req.count}`] : []),
    `--output=${dir}/batch-%j.out`,
    `--chdir=${dir}`,
    ...(config.partition ? [`--partition=${config.partition}`] : []),
    ...(config.account ? [`--account=${config.account}`] : []),
    ...(config.time ? [`--time=${config.time}`] : []),
    ...(config.sbatchArgs ?? []),
    join(dir, "batch.sh"),
  ];
  const sb = await slurmTool("sbatch", config.slurmBin, args, 60_000);
  if (sb.code !== 0) {
    const failure = {
      host: hostname(),
      reason: `sbatch failed: ${lastLine(sb.stderr) || `exit code ${sb.code}`}`,
    };
    emit({ type: "agent:failed", failure });
    throw new SubmitError(failure.reason, [failure]);
  }
  const jobId = sb.stdout.trim().split(";")[0]!;
  emit({ type: "job:submitted", id: jobId, agents: req.count });
  return jobId;
}

/** Waits for every task's report (or failure), the job's end, or a deadline; announces each agent that starts. */
async function waitForPilots(sub: SlurmSubmission, jobId: string): Promise<PilotsSeen> {
  const { req, config, dir, emit } = sub;
  const bin = config.slurmBin;
  const startTimeoutS = config.startTimeout ?? 60;
  const queueTimeoutMs = (config.queueTimeout ?? 300) * 1000;
  const submitted = Date.now();
  let runningSince: number | undefined;
  let lastQueue = 0;
  let queue: { state: string; reason: string } | undefined = { state: "PENDING", reason: "" };
  let tasks = new Map<number, TaskOutcome>();
  const announced = new Set<number>();
  const jobs: AgentJob[] = [];
  const seen = (giveUp?: string): PilotsSeen => ({ tasks, jobs, ...(giveUp ? { giveUp } : {}) });
  while (true) {
    tasks = readPilotOutputs(dir, jobId);
    for (const [t, o] of tasks) {
      if (!o.report || announced.has(t)) continue;
      announced.add(t);
      const job = agentJob(jobId, t, o.report, { submittedAt: submitted, bin });
      jobs.push(job);
      emit({ type: "agent:started", job });
    }
    const expected = [...tasks.values()].find((o) => o.report)?.report?.tasks;
    const settled = [...tasks.values()].filter((o) => o.report || o.fail).length;
    if (expected !== undefined && settled >= expected) return seen();
    if (Date.now() - lastQueue >= 1_000) {
      lastQueue = Date.now();
      queue = (await queueStates([jobId], bin)).get(jobId);
      if (queue && !["PENDING", "CONFIGURING"].includes(queue.state)) runningSince ??= Date.now();
      if (!queue) return seen(); // the job ended
    }
    if (req.signal?.aborted) return seen("the submission was interrupted");
    if (!runningSince && Date.now() - submitted > queueTimeoutMs) {
      return seen(
        `job ${jobId} did not start within ${queueTimeoutMs / 1000} s (${queue?.state ?? "gone"}${
          queue?.reason && queue.reason !== "None" ? `, reason: ${queue.reason}` : ""
        })`,
      );
    }
    if (runningSince && Date.now() - runningSince > (startTimeoutS * 2 + 30) * 1000) {
      return seen(`the pilots of job ${jobId} did not all report within ${startTimeoutS * 2 + 30} s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The agent that task `t` of job `jobId` reported. */
function agentJob(
  jobId: string,
  t: number,
  report: NonNullable<TaskOutcome["report"]>,
  options: { submittedAt: number; bin: string | undefined },
): AgentJob {
  const { bin } = options;
  return {
    rms: "slurm",
    id: `${jobId}:${t}`,
    host: report.host,
    peerId: report.agent.peerId,
    addrs: report.agent.addrs,
    submittedAt: options.submittedAt,
    remote: {
      jobId,
      task: t,
      dataDir: report.dataDir,
      ...(bin ? { slurmBin: bin } : {}),
    } satisfies SlurmRemote,
  };
}

/** A failure for each task that did not report, and for each missing one the minimum still needs; each emitted. */
function pilotFailures(sub: SlurmSubmission, jobId: string, seen: PilotsSeen): AgentFailure[] {
  const { min, dir, emit } = sub;
  const { tasks, jobs, giveUp } = seen;
  const failures: AgentFailure[] = [];
  const fail = (f: AgentFailure) => {
    failures.push(f);
    emit({ type: "agent:failed", failure: f });
  };
  for (const [t, o] of [...tasks].sort((a, b) => a[0] - b[0])) {
    if (o.report) continue;
    const reason = o.fail?.reason ?? giveUp ?? (o.errTail ||
      `the pilot ended during step "${o.step ?? "start"}"`);
    fail({
      host: `task ${t} of job ${jobId}`,
      job: `${jobId}:${t}`,
      step: o.fail?.step ?? o.step ?? "start",
      reason,
    });
  }
  if (jobs.length + failures.length < min) {
    const missing = min - jobs.length - failures.length;
    const reason = giveUp ??
      (tail(join(dir, `batch-${jobId}.out`)) || `job ${jobId} ended before its pilots reported`);
    for (let i = 0; i < missing; i++) fail({ host: hostname(), job: jobId, reason });
  }
  return failures;
}

async function slurmStatus(jobs: AgentJob[]): Promise<JobStatus[]> {
  const byBin = Map.groupBy(jobs, (j) => remoteOf(j).slurmBin ?? "");
  const out = new Map<string, JobStatus>();
  for (const [bin, group] of byBin) {
    let states: Map<string, { state: string; reason: string }> | undefined;
    let detail = "";
    try {
      states = await queueStates([...new Set(group.map((j) => remoteOf(j).jobId))], bin || undefined);
    } catch (err) {
      detail = (err as Error).message;
    }
    for (const job of group) {
      const q = states?.get(remoteOf(job).jobId);
      const state: JobStatus["state"] = !states
        ? "unknown"
        : !q
        ? "exited"
        : ["PENDING", "CONFIGURING"].includes(q.state)
        ? "pending"
        : "running";
      out.set(job.id, { id: job.id, state, ...(detail ? { detail } : q ? { detail: q.state } : {}) });
    }
  }
  return jobs.map((j) => out.get(j.id)!);
}

async function cancelSlurm(jobs: AgentJob[], options: CancelOptions = {}): Promise<CancelResult[]> {
  const out = new Map<string, CancelResult>();
  const byJob = Map.groupBy(jobs, (j) => `${remoteOf(j).slurmBin ?? ""}\0${remoteOf(j).jobId}`);
  await Promise.all([...byJob.values()].map(async (group) => {
    const r = await cancelJob(remoteOf(group[0]!), options);
    group.forEach((j) => out.set(j.id, { id: j.id, ...r }));
  }));
  return jobs.map((j) => out.get(j.id)!);
}

/** Cancels one Slurm job: scancel, then after the grace time scancel with KILL. */
async function cancelJob(
  { jobId, slurmBin: bin }: SlurmRemote,
  options: CancelOptions,
): Promise<Omit<CancelResult, "id">> {
  const graceMs = options.graceMs ?? 10_000;
  try {
    if (!(await queueStates([jobId], bin)).has(jobId)) return { outcome: "gone" };
    const sc = await slurmTool("scancel", bin, [jobId]);
    if (sc.code !== 0) return { outcome: "failed", detail: `scancel ${jobId}: ${lastLine(sc.stderr)}` };
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && !options.signal?.aborted) {
      if (!(await queueStates([jobId], bin)).has(jobId)) return { outcome: "terminated" };
      await new Promise((r) => setTimeout(r, 200));
    }
    await slurmTool("scancel", bin, ["--signal=KILL", "--full", jobId]);
    const hard = Date.now() + 10_000;
    while (Date.now() < hard && (await queueStates([jobId], bin)).has(jobId)) {
      await new Promise((r) => setTimeout(r, 200));
    }
    return { outcome: "killed" };
  } catch (err) {
    return { outcome: "failed", detail: (err as Error).message };
  }
}

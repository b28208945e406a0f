/**
 * The `ssh` plug-in: agents on other machines, reached with the system's `ssh` (so `~/.ssh/config`,
 * agents and keys work as usual). Per host it checks the remote binary's SHA-256 and copies `shoal` only
 * when it differs, then runs a pilot per agent that starts it detached and reports its peer ID and
 * addresses on stdout. One shared connection per host (ControlMaster) keeps repeated ssh calls cheap.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { sha256File, shippableBinary } from "./_binary.ts";
import { execTool, lastLine } from "./_exec.ts";
import { mapLimit } from "./_limit.ts";
import { readConfigFile } from "./config.ts";
import { PilotStepError, RmsConfigError, RmsToolMissingError, SubmitError } from "./errors.ts";
import {
  BIN_SHA_FN,
  parsePilotLine,
  type PilotReport,
  renderPilot,
  shellPath,
  shellQuote,
  unameArch,
  unameOs,
} from "./pilot.ts";
import { parseSshConfig, type SshConfig, SshConfigSchema, type SshHost, sshHosts } from "./ssh_config.ts";
import { pilotStepsFor } from "./pilots.ts";
import type {
  AgentFailure,
  AgentJob,
  CancelOptions,
  CancelResult,
  JobStatus,
  RmsConfig,
  RmsPlugin,
  SubmitRequest,
} from "./types.ts";
import * as v from "valibot";

/** Where a job runs, as kept in `AgentJob.remote`. */
interface SshRemote {
  destination: string;
  options: string[];
  dataDir: string;
  pid: number;
  ssh?: string;
}

/** Connection settings shared by every ssh call of one plug-in use. */
interface Conn {
  ssh: string;
  connectTimeout: number;
  controlMaster: boolean;
  controlPersist: number;
}

const DEFAULT_CONN: Conn = { ssh: "ssh", connectTimeout: 10, controlMaster: true, controlPersist: 60 };
const PER_HOST_PARALLEL = 8;

function controlPath(destination: string, options: string[]): string {
  const dir = join(tmpdir(), `shoal-ssh-${userInfo().uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Not %C: two identities for the same user@host:port must not share one connection.
  const id = createHash("sha256").update([destination, ...options].join("\0")).digest("hex").slice(0, 20);
  return join(dir, id);
}

function sshArgs(conn: Conn, destination: string, options: string[]): string[] {
  // ssh keeps the first value of an option: the user's options go first so they can override ours.
  return [
    ...options,
    "-o",
    "BatchMode=yes",
    "-o",
    `ConnectTimeout=${conn.connectTimeout}`,
    "-o",
    "ServerAliveInterval=10",
    ...(conn.controlMaster
      ? [
        "-o",
        "ControlMaster=auto",
        "-o",
        `ControlPath=${controlPath(destination, options)}`,
        "-o",
        `ControlPersist=${conn.controlPersist}`,
      ]
      : []),
    destination,
  ];
}

function sshFailure(dest: string, r: { code: number | null; stderr: string; timedOut: boolean }, ms: number) {
  if (r.timedOut) return `No answer from "${dest}" within ${Math.round(ms / 1000)} s`;
  return lastLine(r.stderr) || `ssh exited with code ${r.code}`;
}

async function runRemote(
  conn: Conn,
  target: { destination: string; options: string[] },
  command: string,
  opts: {
    input?: string | { file: string };
    timeoutMs: number;
    signal?: AbortSignal;
    onLine?: (l: string) => void;
  },
) {
  const r = await execTool(conn.ssh, [...sshArgs(conn, target.destination, target.options), command], opts);
  if (r.spawnError?.code === "ENOENT") {
    throw new RmsToolMissingError("ssh", `"${conn.ssh}" is not installed here; install OpenSSH's client`);
  }
  return r;
}

/**
 * Checks the remote binary by hash and copies it when it differs; returns whether it copied.
 *
 * @throws {PilotStepError} at step "stage-binary" when the host cannot be reached or the copy fails.
 */
async function stageBinary(
  conn: Conn,
  host: SshHost,
  binary: { file: string; sha256: string },
  signal?: AbortSignal,
): Promise<boolean> {
  const dir = `${shellPath(host.workDir)}/bin`;
  const probeMs = (conn.connectTimeout + 20) * 1000;
  const probe = await runRemote(
    conn,
    host,
    `${BIN_SHA_FN}\nmkdir -p ${dir} && shoal_bin_sha ${dir}/shoal`,
    {
      timeoutMs: probeMs,
      ...(signal ? { signal } : {}),
    },
  );
  if (probe.code !== 0) {
    throw new PilotStepError("stage-binary", sshFailure(host.destination, probe, probeMs));
  }
  if (probe.stdout.split(/\s/)[0] === binary.sha256) return false;
  const part = `${dir}/shoal.part.$$`;
  const copy = await runRemote(
    conn,
    host,
    `${BIN_SHA_FN}\ncat >${part} && chmod 755 ${part} && ` +
      `[ "$(sha256sum ${part} | cut -d' ' -f1)" = ${binary.sha256} ] && mv -f ${part} ${dir}/shoal && ` +
      `shoal_bin_sha ${dir}/shoal >/dev/null || { rm -f ${part}; echo "the copy of shoal arrived damaged" >&2; exit 1; }`,
    { input: { file: binary.file }, timeoutMs: 600_000, ...(signal ? { signal } : {}) },
  );
  if (copy.code !== 0) {
    throw new PilotStepError(
      "stage-binary",
      `Copying the shoal binary failed: ${sshFailure(host.destination, copy, 600_000)}`,
    );
  }
  return true;
}

/** Runs one pilot over ssh; resolves with its report or rejects with the failing step and reason. */
async function runPilot(
  conn: Conn,
  host: SshHost,
  name: string,
  script: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<PilotReport> {
  let report: PilotReport | undefined;
  let fail: { step: string; reason: string } | undefined;
  let step = "connect";
  const file = `${shellPath(host.workDir)}/pilot-${name}.sh`;
  const r = await runRemote(
    conn,
    host,
    `mkdir -p ${shellPath(host.workDir)} && cat >${file} && exec bash ${file} </dev/null`,
    {
      input: script,
      timeoutMs,
      ...(signal ? { signal } : {}),
      onLine: (line) => {
        const m = parsePilotLine(line);
        if (m?.type === "step") step = m.step;
        else if (m?.type === "fail") fail = m;
        else if (m?.type === "report") report = m.report;
      },
    },
  );
  if (report) return report;
  if (fail) throw new PilotStepError(fail.step, fail.reason);
  throw new PilotStepError(step, sshFailure(host.destination, r, timeoutMs));
}

function connOf(config: SshConfig): Conn {
  return {
    ssh: config.ssh ?? DEFAULT_CONN.ssh,
    connectTimeout: config.connectTimeout ?? DEFAULT_CONN.connectTimeout,
    controlMaster: config.controlMaster ?? DEFAULT_CONN.controlMaster,
    controlPersist: config.controlPersist ?? DEFAULT_CONN.controlPersist,
  };
}

function checkConfig(config: RmsConfig | undefined, options: { hosts?: boolean } = {}): SshConfig {
  const r = v.safeParse(SshConfigSchema, config ?? {});
  if (!r.success) {
    const path = r.issues[0].path?.map((p: { key: unknown }) => String(p.key)).join(".") ?? "";
    throw new RmsConfigError("ssh config", `${path ? `"${path}": ` : ""}${r.issues[0].message}`);
  }
  if (options.hosts !== false && !r.output.hosts?.length) {
    throw new RmsConfigError(
      "",
      "The ssh plug-in needs a host list: `shoal submit --rms ssh -c hosts.cfg` (DDS format or JSON)",
    );
  }
  return r.output;
}

function remoteOf(job: AgentJob): SshRemote {
  const r = job.remote as Partial<SshRemote> | undefined;
  if (!r?.destination || !r.dataDir || !r.pid) throw new TypeError(`Job "${job.id}" has no ssh target`);
  return {
    destination: r.destination,
    options: r.options ?? [],
    dataDir: r.dataDir,
    pid: r.pid,
    ...(r.ssh ? { ssh: r.ssh } : {}),
  };
}

const ALIVE_FN = String.raw`alive() {
  if [ -d /proc/self ]; then [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "$2"
  else kill -0 "$1" 2>/dev/null; fi
}`;

function groupByTarget(jobs: AgentJob[]): Map<string, { remote: SshRemote; jobs: AgentJob[] }> {
  const groups = new Map<string, { remote: SshRemote; jobs: AgentJob[] }>();
  for (const job of jobs) {
    const remote = remoteOf(job);
    const key = JSON.stringify([remote.destination, remote.options, remote.ssh]);
    const g = groups.get(key) ?? { remote, jobs: [] };
    g.jobs.push(job);
    groups.set(key, g);
  }
  return groups;
}

function cancelScript(jobs: AgentJob[], graceMs: number): string {
  const rs = jobs.map(remoteOf);
  return [
    ALIVE_FN,
    `pids=(${rs.map((r) => r.pid).join(" ")})`,
    `dirs=(${rs.map((r) => shellQuote(r.dataDir)).join(" ")})`,
    "res=()",
    `for i in "\${!pids[@]}"; do`,
    `  if alive "\${pids[i]}" "\${dirs[i]}"; then kill -TERM "\${pids[i]}" 2>/dev/null; res[i]=terminated; else res[i]=gone; fi`,
    "done",
    `end=$(( $(date +%s%N) / 1000000 + ${graceMs} ))`,
    "while :; do",
    "  left=0",
    `  for i in "\${!pids[@]}"; do [ "\${res[i]}" = terminated ] && alive "\${pids[i]}" "\${dirs[i]}" && left=1; done`,
    "  [ $left = 0 ] && break",
    "  [ $(( $(date +%s%N) / 1000000 )) -ge $end ] && break",
    "  sleep 0.1",
    "done",
    `for i in "\${!pids[@]}"; do`,
    `  if [ "\${res[i]}" = terminated ] && alive "\${pids[i]}" "\${dirs[i]}"; then kill -KILL "\${pids[i]}"; res[i]=killed; fi`,
    `  echo "\${pids[i]} \${res[i]}"`,
    "done",
  ].join("\n") + "\n";
}

/** How failures name a host: its config ID too when that says more than the destination. */
function hostLabel(h: SshHost): string {
  return h.id === h.destination.replace(/^.*@/, "") ? h.destination : `${h.id} (${h.destination})`;
}

/** One agent to start: which host, its slots and its name. */
interface Plan {
  host: SshHost;
  slots: number;
  name: string;
}

/** Creates the ssh plug-in. */
export function createSshRms(): RmsPlugin {
  return {
    name: "ssh",
    async loadConfig(file: string): Promise<RmsConfig> {
      return parseSshConfig(file, await readConfigFile(file)) as RmsConfig;
    },
    pilotSteps: (req) => pilotStepsFor("ssh", "detach", req, checkConfig(req.config, { hosts: false })),
    defaultCount(config: RmsConfig | undefined): number {
      return sshHosts(checkConfig(config)).reduce((n, h) => n + h.agents, 0);
    },
    submit: submitSsh,
    status: sshStatus,
    cancel: cancelSsh,
  };
}

/** One submission: what every agent's start shares, and what the starts gathered so far. */
interface SshSubmission {
  req: SubmitRequest;
  config: SshConfig;
  conn: Conn;
  steps: ReturnType<typeof pilotStepsFor>["steps"];
  binary: { file: string; sha256: string };
  swarmKey: string;
  startTimeoutS: number;
  emit: NonNullable<SubmitRequest["onEvent"]>;
  /** Per distinct host (see {@linkcode hostKey}): why staging the binary failed, or `undefined`. */
  staged: Map<string, PilotStepError | undefined>;
  jobs: AgentJob[];
  failures: AgentFailure[];
}

/** A host as far as staging the binary goes: destination, options and work dir. */
function hostKey(h: SshHost): string {
  return JSON.stringify([h.destination, h.options, h.workDir]);
}

async function submitSsh(req: SubmitRequest): Promise<AgentJob[]> {
  if (!Number.isInteger(req.count) || req.count < 1) {
    throw new RangeError(`Agent count "${req.count}" < 1`);
  }
  const config = checkConfig(req.config);
  const file = shippableBinary(req.self, config.binary, "ssh");
  const sub: SshSubmission = {
    req,
    config,
    conn: connOf(config),
    steps: pilotStepsFor("ssh", "detach", req, config).steps,
    binary: { file, sha256: await sha256File(file) },
    swarmKey: await readFile(req.session.swarmKeyFile, "utf8"),
    startTimeoutS: config.startTimeout ?? 60,
    emit: req.onEvent ?? (() => {}),
    staged: new Map(),
    jobs: [],
    failures: [],
  };
  const plans = planAgents(req, sshHosts(config));
  await stageBinaries(sub, plans);
  await startPlanned(sub, plans);
  const { jobs, failures } = sub;
  const min = req.minCount ?? 1;
  if (jobs.length < min) {
    if (jobs.length > 0) await cancelSsh(jobs, { graceMs: 2_000 });
    throw new SubmitError(
      `Only ${jobs.length} of ${req.count} agents started over ssh (at least ${min} needed): ${
        failures.map((f) => `${f.host}: ${f.reason}`).join("; ")
      }`,
      failures,
    );
  }
  return jobs;
}

/** The agents to start, spread over the hosts' agent counts in turn. */
function planAgents(req: SubmitRequest, hosts: SshHost[]): Plan[] {
  const stamp = Date.now().toString(36);
  const slotsOf = hosts.flatMap((h) => Array.from({ length: h.agents }, () => h));
  return Array.from({ length: req.count }, (_, i) => {
    const host = slotsOf[i % slotsOf.length]!;
    return { host, slots: host.slots ?? req.slots, name: `${host.id}-${stamp}-${i}` };
  });
}

/** Starts the planned agents: a founder first when the session has no bootstrap yet, then the rest per host. */
async function startPlanned(sub: SshSubmission, plans: Plan[]): Promise<void> {
  let bootstrap = sub.req.session.bootstrap;
  let rest = plans;
  if (bootstrap.length === 0) {
    // The first agent that starts founds the mesh; the others bootstrap to it.
    while (rest.length > 0 && bootstrap.length === 0) {
      const founder = await startOne(sub, rest[0]!, []);
      rest = rest.slice(1);
      if (founder) bootstrap = founder.addrs ?? [];
    }
  }
  const byHost = Map.groupBy(rest, (p) => hostKey(p.host));
  await Promise.all(
    [...byHost.values()].map((group) =>
      mapLimit(group, PER_HOST_PARALLEL, (plan) => startOne(sub, plan, bootstrap))
    ),
  );
}

/** Stages the binary once per distinct host of `plans`, recording each host's failure in `sub.staged`. */
async function stageBinaries(sub: SshSubmission, plans: Plan[]): Promise<void> {
  const distinct = [...new Map(plans.map((p) => [hostKey(p.host), p.host])).values()];
  await mapLimit(distinct, 16, async (host) => {
    const started = performance.now();
    try {
      const copied = await stageBinary(sub.conn, host, sub.binary, sub.req.signal);
      sub.staged.set(hostKey(host), undefined);
      sub.emit({
        type: "binary:staged",
        host: host.destination,
        copied,
        ms: Math.round(performance.now() - started),
      });
    } catch (err) {
      if (err instanceof RmsToolMissingError) throw err;
      sub.staged.set(
        hostKey(host),
        err instanceof PilotStepError
          ? err
          : new PilotStepError("stage-binary", (err as Error).message, { cause: err }),
      );
    }
  });
}

/** Records an agent that did not start, and tells the caller. */
function fail(sub: SshSubmission, f: AgentFailure): void {
  sub.failures.push(f);
  sub.emit({ type: "agent:failed", failure: f });
}

/** Starts one planned agent; its job, or `undefined` after recording why it did not start. */
async function startOne(
  sub: SshSubmission,
  plan: Plan,
  bootstrap: string[],
): Promise<AgentJob | undefined> {
  const stageError = sub.staged.get(hostKey(plan.host));
  if (stageError) {
    fail(sub, { host: hostLabel(plan.host), step: stageError.step, reason: stageError.message });
    return undefined;
  }
  const { conn, config, req } = sub;
  const timeoutMs = (conn.connectTimeout + sub.startTimeoutS + 30) * 1000;
  const script = sshPilotScript(sub, plan, bootstrap);
  try {
    const report = await runPilot(conn, plan.host, plan.name, script, timeoutMs, req.signal);
    const job: AgentJob = {
      rms: "ssh",
      id: `${plan.host.id}:${report.agent.pid}`,
      host: report.host,
      peerId: report.agent.peerId,
      addrs: report.agent.addrs,
      submittedAt: Date.now(),
      remote: {
        destination: plan.host.destination,
        options: plan.host.options,
        dataDir: report.dataDir,
        pid: report.agent.pid,
        ...(config.ssh ? { ssh: config.ssh } : {}),
      } satisfies SshRemote,
    };
    sub.jobs.push(job);
    sub.emit({ type: "agent:started", job });
    return job;
  } catch (err) {
    if (err instanceof RmsToolMissingError) throw err;
    fail(sub, {
      host: hostLabel(plan.host),
      ...(err instanceof PilotStepError ? { step: err.step } : {}),
      reason: (err as Error).message,
    });
    return undefined;
  }
}

/** The pilot script of one planned agent. */
function sshPilotScript(sub: SshSubmission, plan: Plan, bootstrap: string[]): string {
  const { req, config } = sub;
  return renderPilot({
    mode: "detach",
    steps: sub.steps,
    swarmKey: sub.swarmKey,
    vars: {
      SHOAL_SESSION: req.session.name,
      SHOAL_SESSION_ID: req.session.id,
      SHOAL_AGENT_NAME: plan.name,
      SHOAL_SLOTS: String(plan.slots),
      SHOAL_GROUP: req.group ?? "",
      SHOAL_HOST: "",
      SHOAL_LABELS: Object.entries(req.labels ?? {}).map(([k, val]) => `${k}=${val}`).join("\n"),
      SHOAL_COMMAND_HANDLER: req.commandHandler ?? "",
      SHOAL_METRICS: req.metrics ?? "",
      SHOAL_LISTEN: plan.host.listen ?? "/ip4/0.0.0.0/tcp/0",
      SHOAL_BOOTSTRAP: bootstrap.join(" "),
      SHOAL_BIN_SHA256: sub.binary.sha256,
      SHOAL_BIN_SOURCE: "",
      SHOAL_FOUNDER_OUTPUT: "",
      SHOAL_START_TIMEOUT: String(sub.startTimeoutS),
      SHOAL_EXPECT_OS: unameOs(),
      SHOAL_EXPECT_ARCH: unameArch(),
    },
    rawVars: {
      SHOAL_WORK_DIR: shellPath(plan.host.workDir),
      SHOAL_BIN: '"$SHOAL_WORK_DIR/bin/shoal"',
      SHOAL_DATA_DIR: `"$SHOAL_WORK_DIR/sessions/"${shellQuote(req.session.name)}/${shellQuote(plan.name)}`,
    },
    ...(config.env ? { env: config.env } : {}),
  });
}

/** Connection settings for a job's later calls: the defaults, with the ssh the job was started with. */
function connFor(remote: SshRemote): Conn {
  return { ...DEFAULT_CONN, ...(remote.ssh ? { ssh: remote.ssh } : {}) };
}

async function sshStatus(jobs: AgentJob[], options: { signal?: AbortSignal } = {}): Promise<JobStatus[]> {
  const out = new Map<string, JobStatus>();
  await Promise.all([...groupByTarget(jobs).values()].map(async ({ remote, jobs: group }) => {
    const conn = connFor(remote);
    const script = [
      ALIVE_FN,
      ...group.map(remoteOf).map((r) =>
        `if alive ${r.pid} ${
          shellQuote(r.dataDir)
        }; then echo "${r.pid} running"; else echo "${r.pid} exited"; fi`
      ),
    ].join("\n");
    const r = await runRemote(conn, remote, "bash -s", {
      input: script,
      timeoutMs: (conn.connectTimeout + 20) * 1000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const states = new Map(r.stdout.split("\n").map((l) => l.split(" ") as [string, string]));
    for (const job of group) {
      const state = r.code === 0 ? states.get(String(remoteOf(job).pid)) : undefined;
      out.set(
        job.id,
        state === "running" || state === "exited" ? { id: job.id, state } : {
          id: job.id,
          state: "unknown",
          detail: sshFailure(remote.destination, r, (conn.connectTimeout + 20) * 1000),
        },
      );
    }
  }));
  return jobs.map((j) => out.get(j.id)!);
}

async function cancelSsh(jobs: AgentJob[], options: CancelOptions = {}): Promise<CancelResult[]> {
  const graceMs = options.graceMs ?? 10_000;
  const out = new Map<string, CancelResult>();
  await Promise.all([...groupByTarget(jobs).values()].map(async ({ remote, jobs: group }) => {
    const conn = connFor(remote);
    const timeoutMs = graceMs + (conn.connectTimeout + 20) * 1000;
    const r = await runRemote(conn, remote, "bash -s", {
      input: cancelScript(group, graceMs),
      timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const outcomes = new Map(r.stdout.split("\n").map((l) => l.split(" ") as [string, string]));
    for (const job of group) {
      const o = r.code === 0 ? outcomes.get(String(remoteOf(job).pid)) : undefined;
      out.set(
        job.id,
        o === "terminated" || o === "killed" || o === "gone" ? { id: job.id, outcome: o } : {
          id: job.id,
          outcome: "failed",
          detail: `${remote.destination}: ${sshFailure(remote.destination, r, timeoutMs)}`,
        },
      );
    }
  }));
  return jobs.map((j) => out.get(j.id)!);
}

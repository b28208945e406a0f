/**
 * Mesh scale: for each N, `shoal up --agents N --slots 1`, then the idle cost of every agent process
 * (CPU from `/proc/<pid>/stat` over a window after a quiet period; memory as RSS, as its anonymous part —
 * what the agent itself allocated — and as PSS, which shares the binary's mapped pages, common to every
 * agent on the machine, out among them: `/proc/<pid>/status` and `smaps_rollup`), and
 * failure detection: one agent SIGKILLed (time until every other agent logged it dead, p50/p99 over
 * observers) and one SIGTERMed (time until every other agent logged it left). N = 4 is the same-run
 * baseline; `cpuRatio` is cpu(N)/cpu(4). Prints one JSON line per N.
 *
 * Run: `npx deno task bench mesh_scale` or
 * `npx deno run -A bench/mesh_scale.ts [N…] [--quiet-s 8] [--window-s 10]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isAlive as alive } from "../rms/process_tree.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "dist/shoal");
const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : dflt;
};
const quietS = flag("--quiet-s", 30);
const windowS = flag("--window-s", 10);
const sizes = args.length ? args.map(Number) : [4, 16, 50, 100];
const CLK_TCK = 100;

interface Job {
  id: string;
  dataDir?: string;
}

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLK_TCK; // utime + stime
}

/** A `Name:  N kB` figure of a /proc file, in MB. */
function procMb(file: string, name: string): number {
  const line = readFileSync(file, "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}
const rssMb = (pid: number) => procMb(`/proc/${pid}/status`, "VmRSS");
const anonMb = (pid: number) => procMb(`/proc/${pid}/status`, "RssAnon");
const pssMb = (pid: number) => procMb(`/proc/${pid}/smaps_rollup`, "Pss");

function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Times at which each agent's log first says `event` about `peer`, in ms since epoch. */
function loggedAt(jobs: Job[], event: string, peer: string): number[] {
  const out: number[] = [];
  for (const j of jobs) {
    let text = "";
    try {
      text = readFileSync(join(j.dataDir!, "agent.log"), "utf8");
    } catch { /* no log */ }
    const line = text.split("\n").find((l) => l.includes(` ${event} `) && l.includes(`peer=${peer}`));
    if (line) out.push(Date.parse(line.slice(0, 24)));
  }
  return out;
}

/** Waits until every agent in `jobs` logged `event` about `peer` (or the deadline); returns delays. */
async function detection(jobs: Job[], event: string, peer: string, since: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let times = loggedAt(jobs, event, peer);
  while (times.length < jobs.length && Date.now() < deadline) {
    await sleep(200);
    times = loggedAt(jobs, event, peer);
  }
  const delays = times.map((t) => t - since);
  return {
    observers: times.length,
    of: jobs.length,
    p50Ms: Math.round(quantile(delays, 0.5)),
    p99Ms: Math.round(quantile(delays, 0.99)),
  };
}

let baseCpu = NaN;
for (const n of sizes) {
  const home = mkdtempSync(join(tmpdir(), "shoal-mesh-bench-"));
  const env = { ...process.env, SHOAL_HOME: home, NO_COLOR: "1" };
  const t0 = performance.now();
  const up = spawnSync(bin, ["up", "--agents", String(n), "--slots", "1", "--json", "--timeout", "120"], {
    env,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  const upMs = Math.round(performance.now() - t0);
  const session = JSON.parse(readFileSync(join(home, "sessions/default/session.json"), "utf8"));
  const jobs: Job[] = session.jobs;
  const pids = jobs.map((j) => Number(j.id));
  let result: Record<string, unknown> = { scenario: "mesh_scale", agents: n, upMs, upExit: up.status };
  try {
    if (up.status !== 0) throw new Error(`shoal up failed: ${up.stderr.slice(-400)}`);
    const view = JSON.parse(up.stdout);
    result.aliveAtUp = view.agents.filter((a: { state: string }) => a.state === "alive").length;
    await sleep(quietS * 1000);
    const before = pids.map(cpuMs);
    const w0 = performance.now();
    await sleep(windowS * 1000);
    const secs = (performance.now() - w0) / 1000;
    const cpu = pids.map((p, i) => (cpuMs(p) - before[i]!) / secs);
    const rss = pids.map(rssMb);
    const anon = pids.map(anonMb);
    const pss = pids.map(pssMb);
    const cpuMedian = quantile(cpu, 0.5);
    if (n === sizes[0]) baseCpu = cpuMedian;
    const info = spawnSync(bin, ["info", "--json"], { env, encoding: "utf8", maxBuffer: 64 << 20 });
    const infoAlive = info.status === 0
      ? JSON.parse(info.stdout).agents.filter((a: { state: string }) => a.state === "alive").length
      : -1;
    // Failure detection: SIGKILL the last agent, SIGTERM the one before it.
    const killed = jobs.at(-1)!;
    const killedId = JSON.parse(readFileSync(join(killed.dataDir!, "agent.json"), "utf8")).peerId;
    const observers = jobs.slice(0, -2);
    const tKill = Date.now();
    process.kill(Number(killed.id), "SIGKILL");
    const dead = await detection(observers, "agent:dead", killedId, tKill, 30_000);
    const termed = jobs.at(-2)!;
    const termedId = JSON.parse(readFileSync(join(termed.dataDir!, "agent.json"), "utf8")).peerId;
    const tTerm = Date.now();
    process.kill(Number(termed.id), "SIGTERM");
    const left = await detection(observers, "agent:left", termedId, tTerm, 30_000);
    result = {
      ...result,
      infoAlive,
      idleCpuMsPerS: {
        median: round(cpuMedian),
        p90: round(quantile(cpu, 0.9)),
        max: round(Math.max(...cpu)),
      },
      rssMb: { median: round(quantile(rss, 0.5)), max: round(Math.max(...rss)) },
      anonMb: { median: round(quantile(anon, 0.5)), max: round(Math.max(...anon)) },
      pssMb: { median: round(quantile(pss, 0.5)), max: round(Math.max(...pss)) },
      killDetected: dead,
      termDetected: left,
      baseline: { agents: sizes[0], idleCpuMsPerS: round(baseCpu) },
      cpuRatio: round(cpuMedian / baseCpu, 2),
    };
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    spawnSync(bin, ["down", "--purge"], { env, encoding: "utf8" });
    const deadline = Date.now() + 15_000;
    while (pids.some(alive) && Date.now() < deadline) await sleep(100);
    result.leftRunning = pids.filter(alive).length;
    for (const p of pids.filter(alive)) process.kill(p, "SIGKILL");
    rmSync(home, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result));
}

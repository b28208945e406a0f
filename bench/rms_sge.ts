/**
 * `shoal submit --rms sge -n N` into a running session (qsub of an array job of pilots → every agent alive
 * in the mesh), against two baselines measured in the same run: `shoal submit --rms localhost -n N` (the same
 * join, no batch system) and Grid Engine's own floor, an array job of N tasks that only exit (qsub → the job
 * gone from qstat). Then `shoal down` of the SGE agents (qdel with -notify → agents stopped cleanly). Prints
 * one JSON line (p50/min/max of the runs). Needs Grid Engine (`.ci/setup-sge.sh`); without it, prints why
 * and exits 0.
 *
 * Run: `npx deno task bench rms_sge` or `npx deno run -A bench/rms_sge.ts [agents] [runs]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const setup = fileURLToPath(new URL("../.ci/setup-sge.sh", import.meta.url));
const N = Math.min(Number(process.argv[2] ?? 4), 8); // the machine's 2 cores are shared: at most 8 agents
const RUNS = Number(process.argv[3] ?? 3);

if (!existsSync("/usr/bin/qsub")) {
  console.log(
    JSON.stringify({ bench: "rms_sge", skipped: "Grid Engine is not installed (.ci/setup-sge.sh)" }),
  );
  process.exit(0);
}
if (spawnSync("bash", [setup, "--no-install"], { stdio: "ignore" }).status !== 0) {
  throw new Error(`${setup} failed`);
}

const home = mkdtempSync(join(tmpdir(), "shoal-bench-sge-"));
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };

function run(cmd: string, args: string[]): { ms: number; out: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return { ms, out: r.stdout };
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]!);
  return { p50: q(0.5), min: q(0), max: q(1) };
}

/** Submits N agents into a session of one local agent; returns the submit's own elapsed time and down's. */
function submitRound(rms: string, cfg?: string): { submitMs: number; downMs: number; clean: number } {
  run(bin, ["up", "-n", "1"]);
  try {
    const sub = JSON.parse(
      run(bin, ["submit", "--rms", rms, "-n", String(N), ...(cfg ? ["-c", cfg] : []), "--json"]).out,
    ) as {
      started: number;
      elapsedMs: number;
    };
    if (sub.started !== N) throw new Error(`only ${sub.started} of ${N} agents started via ${rms}`);
    const down = run(bin, ["down", "--json"]);
    const d = JSON.parse(down.out) as { terminated: number };
    return { submitMs: sub.elapsedMs, downMs: down.ms, clean: d.terminated };
  } catch (err) {
    spawnSync(bin, ["down", "--grace", "1"], { env, stdio: "ignore" });
    throw err;
  }
}

/** Grid Engine alone: an array job of N tasks that exit at once, from qsub to gone from the queue. */
function qsubFloor(): number {
  const script = join(home, "true.sh");
  writeFileSync(script, "#!/bin/bash\nexit 0\n");
  const t0 = performance.now();
  const id = run("qsub", [
    "-terse",
    "-t",
    `1-${N}`,
    "-o",
    "/dev/null",
    "-e",
    "/dev/null",
    "-S",
    "/bin/bash",
    script,
  ])
    .out.trim().split(".")[0]!;
  while (run("qstat", ["-u", "*"]).out.split("\n").some((l) => l.trim().split(/\s+/)[0] === id)) {
    spawnSync("sleep", ["0.05"]);
  }
  return performance.now() - t0;
}

try {
  const sgeCfg = join(home, "sge.json");
  writeFileSync(
    sgeCfg,
    JSON.stringify({ queue: "shoal.q", listen: "/ip4/127.0.0.1/tcp/0", workDir: join(home, "node") }),
  );
  const sge: ReturnType<typeof submitRound>[] = [];
  const local: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    sge.push(submitRound("sge", sgeCfg));
    local.push(submitRound("localhost").submitMs);
    floor.push(qsubFloor());
  }
  const s = stats(sge.map((r) => r.submitMs));
  const l = stats(local);
  console.log(JSON.stringify({
    bench: "rms_sge",
    agents: N,
    runs: RUNS,
    sgeSubmitMs: s,
    measure:
      "shoal submit --rms sge -n N into a session of 1 agent: qsub of an array job → all N alive in the mesh",
    baselineMs: l,
    baseline: "shoal submit --rms localhost -n N into the same kind of session",
    ratio: Math.round(s.p50 / l.p50 * 100) / 100,
    sgeFloorMs: stats(floor),
    sgeFloor:
      "qsub of an array job of N tasks that exit at once → gone from qstat (Grid Engine's own latency)",
    sgeDownMs: stats(sge.map((r) => r.downMs)),
    cleanStops: sge.map((r) => r.clean),
    loadavg: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number),
  }));
} finally {
  rmSync(home, { recursive: true, force: true });
}

/**
 * Deploying 1,000 `sleep` tasks over 4 local agents, against a baseline measured in the same run: one process
 * spawning the same 1,000 processes directly with `node:child_process`. Then stopping them all, against
 * killing them directly. Prints one JSON line (medians of the runs). Exits 1 when any task process is left
 * after a stop, or any process of the session after `shoal down`.
 *
 * Run: `npx deno task bench deploy` or `npx deno run -A bench/deploy.ts [tasks] [runs]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const N = Number(process.argv[2] ?? 1000);
const RUNS = Number(process.argv[3] ?? 3);
const AGENTS = 4;
const MARKER = "86421";
const home = mkdtempSync(join(tmpdir(), "shoal-bench-deploy-"));
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };
const builder = readFileSync(`${bin}.builder`, "utf8").trim();
const runtime = fileURLToPath(
  new URL(`../node_modules/.bin/${builder === "deno" ? "deno" : "bun"}`, import.meta.url),
);

function shoal(args: string[]): { ms: number; out: string } {
  const t0 = performance.now();
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return { ms, out: r.stdout };
}

/** PIDs of live processes (zombies left out) whose command line passes `match`. */
function processes(match: (cmdline: string) => boolean): number[] {
  const pids: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z") continue;
      if (match(readFileSync(`/proc/${e}/cmdline`, "utf8"))) pids.push(Number(e));
    } catch { /* gone */ }
  }
  return pids;
}

/** Task processes of the bench still alive. */
const leftover = () => processes((cmd) => cmd === `sleep\0${MARKER}\0`).length;

/** The baseline runs in the runtime that built the binary, so that both sides use the same spawn code. */
const BASELINE = `
const { spawn } = require("node:child_process");
const n = Number(process.argv[2]);
const t0 = performance.now();
Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
  const c = spawn("sleep", [process.argv[3]], { stdio: "ignore", detached: true });
  c.once("spawn", () => resolve(c));
  c.once("error", reject);
}))).then(async (children) => {
  const spawnMs = performance.now() - t0;
  const t1 = performance.now();
  await Promise.all(children.map((c) => new Promise((resolve) => {
    c.once("exit", resolve);
    process.kill(-c.pid, "SIGTERM");
  })));
  console.log(JSON.stringify({ spawnMs, killMs: performance.now() - t1 }));
});
`;

function bareSpawn(): { spawnMs: number; killMs: number } {
  const script = join(home, "baseline.cjs");
  writeFileSync(script, BASELINE);
  const r = spawnSync(runtime, ["run", script, String(N), MARKER], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { spawnMs: number; killMs: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x);

const topo = join(home, "bench.xml");
writeFileSync(
  topo,
  `<topology name="bench"><decltask name="sleeper"><exe reachable="true">sleep ${MARKER}</exe></decltask>` +
    `<main name="main"><group name="g" n="${N}"><task>sleeper</task></group></main></topology>`,
);

let leftAfterStop = 0;
let leftAfterDown = 0;
try {
  shoal(["up", "--agents", String(AGENTS), "--slots", String(Math.ceil(N / AGENTS))]);
  const base: { spawnMs: number; killMs: number }[] = [];
  const act: number[] = [];
  const actInner: number[] = [];
  const stop: number[] = [];
  const stopInner: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    base.push(bareSpawn());
    const a = shoal(["topology", "activate", topo, "--json"]);
    const res = JSON.parse(a.out) as { started: number; elapsedMs: number };
    if (res.started !== N) throw new Error(`only ${res.started} of ${N} tasks started`);
    act.push(a.ms);
    actInner.push(res.elapsedMs);
    const st = shoal(["topology", "stop", "--json"]);
    stop.push(st.ms);
    stopInner.push((JSON.parse(st.out) as { elapsedMs: number }).elapsedMs);
    leftAfterStop = Math.max(leftAfterStop, leftover());
  }
  const baseSpawn = median(base.map((b) => b.spawnMs));
  const baseKill = median(base.map((b) => b.killMs));
  console.log(JSON.stringify({
    bench: "deploy",
    tasks: N,
    agents: AGENTS,
    runs: RUNS,
    activateMs: round(median(act)),
    activateCommanderMs: round(median(actInner)),
    baselineSpawnMs: round(baseSpawn),
    baseline: `one ${builder} process spawning ${N} sleep processes with node:child_process`,
    ratio: Math.round(median(act) / baseSpawn * 100) / 100,
    stopMs: round(median(stop)),
    stopCommanderMs: round(median(stopInner)),
    baselineKillMs: round(baseKill),
    stopRatio: Math.round(median(stop) / baseKill * 100) / 100,
    leftAfterStop,
  }));
} finally {
  spawnSync(bin, ["down", "--grace", "5"], { env });
  // Agents (their --data-dir is under the home) and tasks must be gone once `down` returned.
  leftAfterDown = processes((cmd) => cmd.includes(home)).length + leftover();
  rmSync(home, { recursive: true, force: true });
}
if (leftAfterStop > 0 || leftAfterDown > 0) {
  console.error(
    `deploy: ${leftAfterStop} task process(es) left after \`shoal topology stop\`, ` +
      `${leftAfterDown} process(es) of the session after \`shoal down\``,
  );
  process.exit(1);
}

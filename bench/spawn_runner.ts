/**
 * Task runner overhead: spawn N `sleep 1000` tasks through one runner (sandbox, log files, DDS env, watchdog)
 * against a bare `child_process.spawn` loop of the same N processes in the same process, then stop them all
 * (`runner.stopAll()` against a bare SIGTERM loop that waits for every exit). Best of a few rounds, alternated.
 * Prints one JSON line. Goal: runner spawn ≤ 1.25× the bare loop.
 *
 * Run: `node_modules/.bin/deno run -A bench/spawn_runner.ts` or `node_modules/.bin/bun run bench/spawn_runner.ts`
 * (`SHOAL_BENCH_TASKS`, `SHOAL_BENCH_ROUNDS` override the defaults 1000 and 3).
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createLogger } from "../agent/log.ts";
import { createTaskRunner } from "../agent/runner/mod.ts";
import type { TaskSpec } from "../agent/wire/mod.ts";

const TASKS = Number(process.env.SHOAL_BENCH_TASKS ?? 1000);
const ROUNDS = Number(process.env.SHOAL_BENCH_ROUNDS ?? 3);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Round {
  spawnMs: number;
  /** CPU time (user + system, all threads) of this process while spawning: less sensitive to a busy host. */
  spawnCpuMs: number;
  stopMs: number;
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};

async function bareRound(): Promise<Round> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const children: ChildProcess[] = [];
  for (let i = 0; i < TASKS; i++) children.push(spawn("sleep", ["1000"], { stdio: "ignore" }));
  const spawnMs = performance.now() - t0;
  const spawnCpuMs = cpuMs(c0);
  const exits = children.map((c) => new Promise<void>((resolve) => c.once("exit", () => resolve())));
  if (children.some((c) => c.pid === undefined)) throw new Error("A bare spawn failed");
  const t1 = performance.now();
  for (const c of children) process.kill(c.pid!, "SIGTERM");
  await Promise.all(exits);
  return { spawnMs, spawnCpuMs, stopMs: performance.now() - t1 };
}

async function runnerRound(workDir: string, round: number): Promise<Round> {
  const runner = createTaskRunner({ workDir, log: createLogger({ stderr: false, level: "error" }) });
  const specs: TaskSpec[] = Array.from({ length: TASKS }, (_, i) => ({
    topologyId: `bench${round}`,
    path: `main/group1/sleeper_${i}`,
    id: String(1_000_000 + i),
    name: "sleeper",
    index: i,
    groupName: "group1",
    exe: "sleep 1000",
    maxRestarts: 0,
    slotId: `slot-${i}`,
    sessionId: "bench",
  }));
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const started = await Promise.all(specs.map((s) => runner.start(s)));
    const spawnMs = performance.now() - t0;
    const spawnCpuMs = cpuMs(c0);
    const failed = started.find((s) => s.state !== "running");
    if (failed) throw new Error(`A runner task did not start: ${failed.reason}`);
    const t1 = performance.now();
    const { stopped } = await runner.stopAll();
    const stopMs = performance.now() - t1;
    if (stopped !== TASKS) throw new Error(`Stopped ${stopped} of ${TASKS} tasks`);
    const left = started.filter((s) => alive(s.pid!));
    if (left.length > 0) throw new Error(`${left.length} task processes survived the stop`);
    return { spawnMs, spawnCpuMs, stopMs };
  } finally {
    await runner[Symbol.asyncDispose]();
  }
}

const best = (xs: number[]) => Math.round(Math.min(...xs) * 10) / 10;
const workDir = mkdtempSync(join(tmpdir(), "shoal-bench-runner-"));
try {
  const bare: Round[] = [];
  const run: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    bare.push(await bareRound());
    run.push(await runnerRound(workDir, r));
  }
  const pick = (rounds: Round[], k: keyof Round) => best(rounds.map((x) => x[k]));
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const versions = process.versions as Record<string, string | undefined>;
  console.log(JSON.stringify({
    bench: "spawn_runner",
    runtime: versions.bun
      ? `bun ${versions.bun}`
      : versions.deno
      ? `deno ${versions.deno}`
      : `node ${versions.node}`,
    tasks: TASKS,
    rounds: ROUNDS,
    bare_spawn_ms: pick(bare, "spawnMs"),
    runner_spawn_ms: pick(run, "spawnMs"),
    spawn_ratio: ratio(pick(run, "spawnMs"), pick(bare, "spawnMs")),
    bare_spawn_cpu_ms: pick(bare, "spawnCpuMs"),
    runner_spawn_cpu_ms: pick(run, "spawnCpuMs"),
    spawn_cpu_ratio: ratio(pick(run, "spawnCpuMs"), pick(bare, "spawnCpuMs")),
    bare_stop_ms: pick(bare, "stopMs"),
    runner_stop_ms: pick(run, "stopMs"),
    stop_ratio: ratio(pick(run, "stopMs"), pick(bare, "stopMs")),
    goal_spawn_ratio: 1.25,
  }));
} finally {
  rmSync(workDir, { recursive: true, force: true });
}

/**
 * Agent start-up: time from exec of `dist/shoal agent` to "joined the mesh" (through a bootstrap agent
 * already running), and the idle RSS of an agent. Baseline in the same run: the runtime that built the
 * binary starting an empty script, and idling in one. Prints one JSON line.
 *
 * Run: `npx deno task bench` or `npx deno run -A bench/agent_start.ts [runs]`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createSwarmKey } from "../mesh/mod.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "dist/shoal");
const builder = readFileSync(`${bin}.builder`, "utf8").trim();
const runs = Number(process.argv[2] ?? 15);
const dir = mkdtempSync(join(tmpdir(), "shoal-bench-"));
const key = join(dir, "swarm.key");
writeFileSync(key, createSwarmKey());

interface Started {
  ms: number;
  pid: number;
  kill: () => Promise<void>;
}

/** Spawns `cmd` and resolves when a stderr line matches `ready` (or at exit when `ready` is null). */
function timeTo(cmd: string, args: string[], ready: RegExp | null): Promise<Started> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    const exited = new Promise<void>((r) => child.on("exit", () => r()));
    const kill = async () => {
      child.kill("SIGKILL");
      await exited;
    };
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
      if (ready?.test(err)) resolve({ ms: performance.now() - t0, pid: child.pid!, kill });
    });
    child.on("exit", (code) => {
      if (!ready) resolve({ ms: performance.now() - t0, pid: child.pid!, kill });
      else reject(new Error(`${cmd} exited ${code} before ready: ${err}`));
    });
  });
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024 * 10) / 10;
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 10) / 10;
  return { p50: q(0.5), min: q(0), max: q(1) };
}

const runtime = builder === "deno"
  ? join(root, "node_modules/deno/deno")
  : join(root, "node_modules/.bin/bun");
const empty = join(dir, "empty.js");
const idle = join(dir, "idle.js");
writeFileSync(empty, "");
writeFileSync(idle, "process.stderr.write('ready\\n'); setInterval(() => {}, 1000);");
const runArgs = (script: string) => builder === "deno" ? ["run", "-A", script] : ["run", script];

try {
  const seed = await timeTo(bin, [
    "agent",
    "--data-dir",
    join(dir, "seed"),
    "--swarm-key",
    key,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
  ], /agent listening/);
  const seedAddr = JSON.parse(readFileSync(join(dir, "seed", "agent.json"), "utf8")).addrs[0] as string;
  const join_: number[] = [];
  const base: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    base.push((await timeTo(runtime, runArgs(empty), null)).ms);
    const a = await timeTo(bin, [
      "agent",
      "--data-dir",
      join(dir, `a${i}`),
      "--swarm-key",
      key,
      "--listen",
      "/ip4/127.0.0.1/tcp/0",
      "--bootstrap",
      seedAddr,
    ], /joined the mesh/);
    join_.push(a.ms);
    if (i === runs - 1) {
      await new Promise((r) => setTimeout(r, 3000));
      rss = rssMb(a.pid);
    }
    await a.kill();
  }
  const idler = await timeTo(runtime, runArgs(idle), /ready/);
  await new Promise((r) => setTimeout(r, 1000));
  const baseRss = rssMb(idler.pid);
  await idler.kill();
  await seed.kill();
  const j = stats(join_);
  const b = stats(base);
  console.log(JSON.stringify({
    bench: "agent_start",
    builder,
    runs,
    joinMs: j,
    baselineMs: b,
    baseline: `${builder} running an empty script`,
    ratio: Math.round(j.p50 / b.p50 * 100) / 100,
    idleRssMB: rss,
    baselineIdleRssMB: baseRss,
    rssRatio: Math.round(rss / baseRss * 100) / 100,
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

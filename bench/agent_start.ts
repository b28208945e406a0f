/**
 * Agent start-up: time from exec of `dist/shoal agent` (bootstrapping through an agent already running) to
 * the new agent being alive in that other agent's membership view, asked over `VIEW_PROTOCOL` every
 * `POLL_MS` as tests do; also the time to the new agent's own "joined the mesh" log line (its bootstrap dial
 * succeeded, before any membership exchange), and the idle RSS of an agent. Baseline in the same run: the
 * runtime that built the binary starting an empty script, and idling in one. Prints one JSON line.
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
import {
  createMeshNode,
  createSwarmKey,
  parseSwarmKey,
  request,
  type View,
  VIEW_PROTOCOL,
  ViewSchema,
} from "../mesh/mod.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "dist/shoal");
const builder = readFileSync(`${bin}.builder`, "utf8").trim();
const runs = Number(process.argv[2] ?? 15);
const dir = mkdtempSync(join(tmpdir(), "shoal-bench-"));
const key = join(dir, "swarm.key");
writeFileSync(key, createSwarmKey());
/** How often the other agent's view is asked: the resolution of `aliveInViewMs`, light on the 2 cores. */
const POLL_MS = 5;

/** A process started by the bench. */
interface Launched {
  pid: number;
  /** Milliseconds from exec to the first stderr matching `ready` (or to exit when `ready` is null). */
  ready: Promise<number>;
  /** True once the process has exited. */
  exited: () => boolean;
  kill: () => Promise<void>;
}

/** Spawns `cmd`; `ready` rejects with its stderr if it exits before a stderr line matches `ready`. */
function launch(cmd: string, args: string[], ready: RegExp | null): Launched {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  let done = false;
  const exit = new Promise<number | null>((r) =>
    child.on("exit", (code) => {
      done = true;
      r(code);
    })
  );
  let err = "";
  const readyAt = new Promise<number>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      err += d;
      if (ready?.test(err)) resolve(performance.now() - t0);
    });
    exit.then((code) => {
      if (!ready) resolve(performance.now() - t0);
      else reject(new Error(`${cmd} exited ${code} before ready: ${err}`));
    });
  });
  readyAt.catch(() => {});
  return {
    pid: child.pid!,
    ready: readyAt,
    exited: () => done,
    kill: async () => {
      child.kill("SIGKILL");
      await exit;
    },
  };
}

/** `p`, or a rejection naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((
        _,
        reject,
      ) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `cmd` and waits until it is ready. */
async function timeTo(cmd: string, args: string[], ready: RegExp | null): Promise<Launched & { ms: number }> {
  const l = launch(cmd, args, ready);
  return { ...l, ms: await l.ready };
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

let seed: Launched | undefined;
try {
  seed = await timeTo(bin, [
    "agent",
    "--data-dir",
    join(dir, "seed"),
    "--swarm-key",
    key,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
  ], /agent listening/);
  const seedAddr = JSON.parse(readFileSync(join(dir, "seed", "agent.json"), "utf8")).addrs[0] as string;
  const probe = await createMeshNode({ swarmKey: parseSwarmKey(readFileSync(key, "utf8")) });
  const seedView = (): Promise<View> =>
    request(probe, seedAddr, VIEW_PROTOCOL, {}, { schema: ViewSchema, timeoutMs: 5_000 });
  const alive: number[] = [];
  const joinLog: number[] = [];
  const base: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    base.push((await timeTo(runtime, runArgs(empty), null)).ms);
    // Everyone the seed knows already (earlier agents, killed, may still look alive for a while).
    const known = new Set((await seedView()).members.map((m) => m.id));
    const t0 = performance.now();
    const a = launch(bin, [
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
    try {
      while (true) {
        const view = await seedView();
        if (view.members.some((m) => m.state === "alive" && !known.has(m.id))) break;
        if (a.exited()) await a.ready; // rejects with the agent's stderr
        if (performance.now() - t0 > 30_000) {
          throw new Error("the new agent was not alive in the seed's view within 30 s");
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      alive.push(performance.now() - t0);
      // Logged before the seed can know of it, so it has been by now (or soon, on a loaded machine).
      joinLog.push(await within(a.ready, 10_000, 'no "joined the mesh" line'));
    } catch (err) {
      await a.kill();
      throw err;
    }
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
  await probe.stop();
  const j = stats(alive);
  const b = stats(base);
  console.log(JSON.stringify({
    bench: "agent_start",
    builder,
    runs,
    aliveInViewMs: j,
    measure:
      `exec of shoal agent → alive in the bootstrap agent's view (VIEW_PROTOCOL asked every ${POLL_MS} ms)`,
    joinedLogMs: stats(joinLog),
    baselineMs: b,
    baseline: `${builder} running an empty script`,
    ratio: Math.round(j.p50 / b.p50 * 100) / 100,
    idleRssMB: rss,
    baselineIdleRssMB: baseRss,
    rssRatio: Math.round(rss / baseRss * 100) / 100,
  }));
} finally {
  await seed?.kill();
  rmSync(dir, { recursive: true, force: true });
}
// libp2p leaves timers behind after the probe's stop() (about 10 s more here); the work is done.
process.exit(0);

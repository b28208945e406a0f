/**
 * All-to-all key-value exchange: N tasks spread over 4 agents each put one value of one property and wait
 * until they have read all N (DDS's tutorial1 pattern at scale). Baseline in the same run: the same N
 * worker processes doing the same exchange through a real Redis server (Debian `redis-server` on a
 * private Unix socket, started here), three ways, and shoal is compared with the fastest:
 * - `pubsub`: SUBSCRIBE, SET + PUBLISH, MGET, then pub/sub messages until all N are known;
 * - `counter`: SET and INCR of one counter in one round trip; the worker that brings it to N RPUSHes N-1
 *   tokens, the others block in BLPOP for one; then one MGET of all N (three round trips per worker);
 * - `stream`: XADD, then XREAD BLOCK from the start of the stream until N entries are read.
 *
 * Both sides run the same worker program (this file in `worker` mode, compiled once with
 * `bun build --compile --bytecode`), so process start-up costs the same. Each worker first gets ready
 * (shoal: reaches its agent; Redis: connects and subscribes), then waits at a barrier (a Unix socket of
 * the bench) until all N are ready, so that the exchange is not mixed up with N processes starting on the
 * same cores. Measured per N, median of `--repeat` runs (default 3): `exchangeMs` = from the barrier's
 * release to the last worker having read all N; `windowMs` = from the first worker's start to the last
 * finish (start-up included). Prints one JSON line. N defaults to 50 and 200, plus 1,000 when memory
 * allows (`--n 1000` forces it).
 *
 * Run: `npx deno run -A bench/kv_all_to_all.ts [--n 50,200,1000] [--repeat 3]` (after `deno task build`;
 * needs `redis-server`: `.ci/setup-redis.sh`).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { freemem, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connectTask } from "../client/mod.ts";

const AGENTS = 4;
const here = fileURLToPath(import.meta.url);

// ---- worker mode -------------------------------------------------------------------------------------

/** A minimal RESP client: enough for the commands the workers send. Calls may be pipelined. */
class Resp {
  readonly #sock: Socket;
  #buf = Buffer.alloc(0);
  readonly #waiting: ((v: unknown) => void)[] = [];
  onPush: ((v: unknown) => void) | undefined;

  constructor(path: string) {
    this.#sock = connect(path);
    this.#sock.on("error", (err) => {
      console.error(`redis: ${err.message}`);
      process.exit(1);
    });
    this.#sock.on("data", (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      while (true) {
        const r = Resp.parse(this.#buf, 0);
        if (!r) break;
        this.#buf = this.#buf.subarray(r.end);
        const next = this.#waiting.shift();
        if (next) next(r.value);
        else this.onPush?.(r.value);
      }
    });
  }

  static parse(b: Buffer, at: number): { value: unknown; end: number } | undefined {
    const nl = b.indexOf("\r\n", at);
    if (nl < 0) return undefined;
    const head = b.toString("utf8", at + 1, nl);
    switch (String.fromCharCode(b[at]!)) {
      case "+":
      case "-":
        return { value: head, end: nl + 2 };
      case ":":
        return { value: Number(head), end: nl + 2 };
      case "$": {
        const n = Number(head);
        if (n < 0) return { value: null, end: nl + 2 };
        if (b.length < nl + 2 + n + 2) return undefined;
        return { value: b.toString("utf8", nl + 2, nl + 2 + n), end: nl + 2 + n + 2 };
      }
      case "*": {
        const n = Number(head);
        const items: unknown[] = [];
        let end = nl + 2;
        for (let i = 0; i < n; i++) {
          const r = Resp.parse(b, end);
          if (!r) return undefined;
          items.push(r.value);
          end = r.end;
        }
        return { value: items, end };
      }
    }
    throw new Error(`Bad RESP byte ${b[at]}`);
  }

  call(...args: string[]): Promise<unknown> {
    let out = `*${args.length}\r\n`;
    for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#sock.write(out);
    });
  }

  close(): void {
    this.#sock.destroy();
  }
}

/** Waits until the bench releases every worker at once (one byte on its barrier socket). */
function barrier(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("data", () => {
      s.destroy();
      resolve();
    });
    s.once("error", reject);
  });
}

/** The Redis ways of the same exchange (see the module doc). */
const REDIS_WAYS = ["pubsub", "counter", "stream"] as const;
type RedisWay = (typeof REDIS_WAYS)[number];

const keys = (n: number) => Array.from({ length: n }, (_, i) => `idx:${i}`);

async function redisPubsubWorker(n: number, index: number, socket: string, go: string): Promise<void> {
  const sub = new Resp(socket);
  const cmd = new Resp(socket);
  const known = new Set<string>();
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  sub.onPush = (m) => {
    const msg = m as string[];
    if (msg[0] === "message") known.add(msg[2]!);
    if (known.size >= n) done();
  };
  await sub.call("SUBSCRIBE", "idx");
  await barrier(go);
  await cmd.call("SET", `idx:${index}`, String(index));
  await cmd.call("PUBLISH", "idx", String(index));
  const existing = await cmd.call("MGET", ...keys(n)) as (string | null)[];
  for (const v of existing) if (v !== null) known.add(v);
  if (known.size >= n) done();
  await all;
  sub.close();
  cmd.close();
}

async function redisCounterWorker(n: number, index: number, socket: string, go: string): Promise<void> {
  const cmd = new Resp(socket);
  await cmd.call("PING");
  await barrier(go);
  // Pipelined: the SET is done before this worker's INCR, so the INCR that reaches N follows all N SETs.
  const [, count] = await Promise.all([
    cmd.call("SET", `idx:${index}`, String(index)),
    cmd.call("INCR", "done"),
  ]);
  if (count === n) {
    if (n > 1) await cmd.call("RPUSH", "go", ...Array.from({ length: n - 1 }, () => "1"));
  } else {
    await cmd.call("BLPOP", "go", "0");
  }
  const values = await cmd.call("MGET", ...keys(n)) as (string | null)[];
  const missing = values.filter((v) => v === null).length;
  if (missing) throw new Error(`MGET after the counter reached ${n} missed ${missing} value(s)`);
  cmd.close();
}

async function redisStreamWorker(n: number, index: number, socket: string, go: string): Promise<void> {
  const cmd = new Resp(socket);
  await cmd.call("PING");
  await barrier(go);
  await cmd.call("XADD", "idx", "*", "v", String(index));
  const known = new Set<string>();
  let last = "0";
  while (known.size < n) {
    const r = await cmd.call("XREAD", "COUNT", String(n), "BLOCK", "0", "STREAMS", "idx", last) as [
      string,
      [string, string[]][],
    ][];
    for (const [id, fields] of r[0]![1]) {
      known.add(fields[1]!);
      last = id;
    }
  }
  cmd.close();
}

const REDIS_WORKERS: Record<RedisWay, typeof redisPubsubWorker> = {
  pubsub: redisPubsubWorker,
  counter: redisCounterWorker,
  stream: redisStreamWorker,
};

async function shoalWorker(n: number, index: number, go: string): Promise<void> {
  const task = connectTask();
  await task.self();
  await barrier(go);
  await task.kv.put("Idx", String(index));
  const r = await task.kv.get("Idx", { waitCount: n, timeoutMs: 600_000 });
  if (r.values.length < n) throw new Error(`read ${r.values.length} of ${n}`);
}

if (process.argv[2] === "worker") {
  const t0 = Date.now();
  const [, , , mode, n, results, go, socket] = process.argv;
  const index = Number(mode === "shoal" ? process.env.DDS_TASK_INDEX : process.env.WORKER_INDEX);
  if (mode === "shoal") await shoalWorker(Number(n), index, go!);
  else await REDIS_WORKERS[mode as RedisWay](Number(n), index, socket!, go!);
  appendFileSync(results!, `${t0} ${Date.now()}\n`);
  process.exit(0);
}

// ---- bench mode --------------------------------------------------------------------------------------

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "shoal-bench-kv-"));
const worker = join(home, "kv-worker");
const built = spawnSync(
  bun,
  ["build", "--compile", "--bytecode", "--format=esm", here, "--outfile", worker],
  {
    encoding: "utf8",
  },
);
if (built.status !== 0) throw new Error(`bun build of the worker failed: ${built.stderr}`);
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };
const nArg = process.argv.indexOf("--n");
/** A compiled Bun worker peaks at about 40 MB RSS; 1,000 of them need about 40 GB free. */
const PER_WORKER = 40 * 1024 * 1024;
const repeatArg = process.argv.indexOf("--repeat");
const REPEAT = repeatArg > 0 ? Math.max(1, Number(process.argv[repeatArg + 1])) : 3;
const wanted = nArg > 0 ? process.argv[nArg + 1]!.split(",").map(Number) : [50, 200, 1000];
const forced = nArg > 0;
const skipped: { n: number; reason: string }[] = [];
const sizes = wanted.filter((n) => {
  if (forced || n * PER_WORKER < freemem() * 0.8) return true;
  skipped.push({
    n,
    reason: `needs ~${
      Math.round(n * PER_WORKER / 2 ** 30)
    } GiB for ${n} compiled Bun workers (~40 MB each); ${Math.round(freemem() / 2 ** 30)} GiB free`,
  });
  return false;
});

function shoal(args: string[]): string {
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

interface Run {
  exchangeMs: number;
  windowMs: number;
}

function measure(file: string, n: number, releasedAt: number): Run {
  const rows = readFileSync(file, "utf8").trim().split("\n").map((l) => l.split(" ").map(Number));
  if (rows.length !== n) throw new Error(`${rows.length} of ${n} workers reported`);
  const starts = rows.map((r) => r[0]!);
  const ends = rows.map((r) => r[1]!);
  return { exchangeMs: Math.max(...ends) - releasedAt, windowMs: Math.max(...ends) - Math.min(...starts) };
}

/** The barrier: once `n` workers are connected, releases them all at once; resolves with that moment. */
function startBarrier(path: string, n: number): { server: Server; released: Promise<number> } {
  const waiting: Socket[] = [];
  let release!: (at: number) => void;
  const released = new Promise<number>((resolve) => (release = resolve));
  const server = createServer((c) => {
    c.on("error", () => {});
    waiting.push(c);
    if (waiting.length !== n) return;
    const at = Date.now();
    for (const w of waiting) w.end("g");
    release(at);
  });
  server.listen(path);
  return { server, released };
}

async function waitLines(file: string, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file) && readFileSync(file, "utf8").split("\n").length > n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`workers did not all finish within ${timeoutMs} ms`);
}

async function redisRun(way: RedisWay, n: number, socket: string, run: number): Promise<Run> {
  const results = join(home, `redis-${way}-${n}-${run}.txt`);
  const go = join(home, `go-redis-${way}-${n}-${run}.sock`);
  const barrier = startBarrier(go, n);
  spawnSync("redis-cli", ["-s", socket, "FLUSHALL"]);
  const children = Array.from({ length: n }, (_, i) =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(worker, ["worker", way, String(n), results, go, socket], {
        env: { ...process.env, WORKER_INDEX: String(i) },
        stdio: ["ignore", "ignore", "inherit"],
      });
      c.once("exit", (code) => code === 0 ? resolve() : reject(new Error(`redis worker exited ${code}`)));
    }));
  await Promise.all(children);
  barrier.server.close();
  return measure(results, n, await barrier.released);
}

async function shoalRun(n: number, run: number): Promise<Run> {
  const results = join(home, `shoal-${n}-${run}.txt`);
  const go = join(home, `go-shoal-${n}-${run}.sock`);
  const barrier = startBarrier(go, n);
  const topo = join(home, `kv-${n}.xml`);
  writeFileSync(
    topo,
    `<topology name="kv${n}"><property name="Idx"/>` +
      `<decltask name="w"><exe reachable="true">${worker} worker shoal ${n} ${results} ${go}</exe>` +
      `<properties><name access="readwrite">Idx</name></properties></decltask>` +
      `<main name="main"><group name="g" n="${n}"><task>w</task></group></main></topology>`,
  );
  // Asynchronously: the barrier in this process must keep accepting the workers while they start.
  const activate = spawn(bin, ["topology", "activate", topo, "--id", `kv${n}`], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  activate.stderr!.on("data", (d) => (stderr += d));
  activate.once("exit", (code) => {
    // On a saturated machine the commander may give up waiting for a lease answer while the agents still
    // start the tasks; the workers' own timestamps are what is measured.
    if (code !== 0) console.error(`kv_all_to_all: activate exited ${code}: ${stderr.split("\n")[0]}`);
  });
  await waitLines(results, n, 600_000);
  shoal(["topology", "stop", "--id", `kv${n}`]);
  barrier.server.close();
  return measure(results, n, await barrier.released);
}

const redisDir = join(home, "redis");
const redisSock = join(redisDir, "redis.sock");
spawnSync("mkdir", ["-m", "700", redisDir]);
const redis = spawn("redis-server", [
  "--port",
  "0",
  "--unixsocket",
  redisSock,
  "--unixsocketperm",
  "700",
  "--save",
  "",
  "--appendonly",
  "no",
  "--maxclients",
  "10000",
], { stdio: "ignore" });
try {
  const deadline = Date.now() + 10_000;
  while (spawnSync("redis-cli", ["-s", redisSock, "PING"], { encoding: "utf8" }).stdout?.trim() !== "PONG") {
    if (Date.now() > deadline) throw new Error("redis-server did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
  const maxN = Math.max(...sizes);
  shoal(["up", "--agents", String(AGENTS), "--slots", String(Math.ceil(maxN / AGENTS) + 1)]);
  const results = [];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const n of sizes) {
    const redisRuns = Object.fromEntries(REDIS_WAYS.map((w) => [w, [] as Run[]])) as Record<RedisWay, Run[]>;
    const shoalRuns: Run[] = [];
    for (let run = 0; run < REPEAT; run++) {
      for (const way of REDIS_WAYS) redisRuns[way].push(await redisRun(way, n, redisSock, run));
      shoalRuns.push(await shoalRun(n, run));
    }
    const s = median(shoalRuns.map((r) => r.exchangeMs));
    const redisMs = Object.fromEntries(
      REDIS_WAYS.map((w) => [w, median(redisRuns[w].map((r) => r.exchangeMs))]),
    ) as Record<RedisWay, number>;
    const best = REDIS_WAYS.reduce((a, b) => (redisMs[b] < redisMs[a] ? b : a));
    results.push({
      n,
      shoalExchangeMs: s,
      bestRedis: best,
      bestRedisExchangeMs: redisMs[best],
      ratio: Math.round(s / Math.max(1, redisMs[best]) * 100) / 100,
      redisExchangeMs: redisMs,
      shoalWindowMs: median(shoalRuns.map((r) => r.windowMs)),
      redisWindowMs: Object.fromEntries(
        REDIS_WAYS.map((w) => [w, median(redisRuns[w].map((r) => r.windowMs))]),
      ),
      runs: {
        shoal: shoalRuns.map((r) => r.exchangeMs),
        ...Object.fromEntries(REDIS_WAYS.map((w) => [`redis-${w}`, redisRuns[w].map((r) => r.exchangeMs)])),
      },
    });
  }
  console.log(JSON.stringify({
    bench: "kv_all_to_all",
    agents: AGENTS,
    baseline: "same compiled Bun worker processes through redis-server on a Unix socket, three ways " +
      "(pubsub: SUBSCRIBE, SET+PUBLISH, MGET; counter: SET+INCR, BLPOP, MGET; stream: XADD, XREAD BLOCK); " +
      "ratio = shoal / the fastest way",
    measure:
      `median of ${REPEAT}: barrier release → last worker has all N (exchange); first start → last done (window)`,
    results,
    ...(skipped.length ? { skipped } : {}),
  }));
} finally {
  spawnSync(bin, ["down", "--grace", "5"], { env });
  redis.kill("SIGTERM");
  rmSync(home, { recursive: true, force: true });
}

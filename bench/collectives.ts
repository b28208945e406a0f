/**
 * Collectives at scale: N tasks (default 1,000) over 4 local agents, each a bash loop speaking the task
 * API with `curl --unix-socket` (a compiled `shoal` helper costs ≈ 40 MB a process; 1,000 would not fit),
 * do a barrier and an allreduce (sum of the task indices, checked exact) for 1 + G generations (default
 * 5; the first is warm-up), and the barrier again with fan-out 2 (a deeper tree over the same agents).
 *
 * Baseline in the same run: the same N bash processes, started the same way (as tasks of a topology on
 * the same agents), doing the same barrier and allreduce through a real `redis-server` on a Unix socket:
 * one `redis-cli` per member and generation (as one `curl` for shoal) sending an EVALSHA (INCR of the
 * generation's counter, INCRBY of its sum; the member that brings the counter to N RPUSHes N tokens
 * carrying the sum) and a BLPOP for one token.
 *
 * Per generation: latency = the last member's release − the last member's arrival (what the barrier
 * itself costs; `$EPOCHREALTIME` around the one call, no fork); then p50 over the G generations. Also
 * checked: no member released before the last arrived, every allreduce result exact. Extrapolation: the
 * fan-out-2 tree has one more level (depth 2 against 1), so (p50(k=2) − p50(k=8)) / 2 is the cost of one
 * hop down and up; each agent sends at most 1 + k messages per generation whatever the mesh size, and
 * the depth grows as ceil(log_k agents). CPU of each agent over the shoal phase is read from /proc.
 *
 * Run: `npx deno task bench collectives` or `npx deno run -A bench/collectives.ts [tasks] [generations]`
 * (after `deno task build`; needs `redis-server` and `curl`: `.ci/setup-redis.sh`, `.ci/setup-curl.sh`).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connectCommander } from "../cli/commander.ts";
import { openSession } from "../cli/session.ts";
import { buildTree, COLL_PROTOCOL, CollResponseSchema } from "../coll/mod.ts";
import { request } from "../mesh/mod.ts";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const N = Number(process.argv[2] ?? 1000);
const G = Number(process.argv[3] ?? 5);
const ROUNDS = G + 1;
const AGENTS = 4;
const FANOUT = 8;

for (const tool of ["redis-server", "redis-cli", "curl", "bash"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
    console.log(
      JSON.stringify({
        bench: "collectives",
        skipped: `${tool} not found (.ci/setup-redis.sh, .ci/setup-curl.sh)`,
      }),
    );
    process.exit(process.env.CI ? 1 : 0);
  }
}

const home = mkdtempSync(join(tmpdir(), "shoal-bench-coll-"));
process.env.SHOAL_HOME = home;
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };

function shoal(args: string[]): string {
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const BARRIER_LUA = `local n = redis.call('INCR', KEYS[1])
local s = redis.call('INCRBY', KEYS[2], ARGV[2])
if n == tonumber(ARGV[1]) then
  local t = {}
  for i = 1, n do t[i] = tostring(s) end
  redis.call('RPUSH', KEYS[3], unpack(t))
end
return n`;

/** The worker: `worker.sh shoal|redis OUTDIR ROUNDS N [SOCKET SHA]`; writes its lines once, at the end. */
const worker = join(home, "worker.sh");
writeFileSync(
  worker,
  `#!/bin/bash
mode=$1; dir=$2; R=$3; N=$4; sock=$5; sha=$6; i=$DDS_TASK_INDEX
# A connection refused under a burst of 1,000 connects (exit 7) never reached the agent: try again.
api() { while :; do curl -sg --unix-socket "$SHOAL_SOCKET" -H "Authorization: Bearer $SHOAL_TASK_TOKEN" "$@"; [ $? = 7 ] || break; done; }
log=""
one() { # kind round
  local e t x
  if [ $mode = shoal ]; then
    e=$EPOCHREALTIME
    case $1 in
      b) x=$(api -X POST "http://t/v1/coll/barrier/b?timeout=300000&fanout=${FANOUT}") ;;
      d) x=$(api -X POST "http://t/v1/coll/barrier/d?timeout=300000&fanout=2") ;;
      a) x=$(api -X POST --data "$i" "http://t/v1/coll/allreduce/a?reduce=sum&timeout=300000&fanout=${FANOUT}")
         x=\${x#*\\"text\\":\\"}; x=\${x%%\\"*} ;;
    esac
    t=$EPOCHREALTIME
  else
    e=$EPOCHREALTIME
    # The same for redis-cli: "Could not connect" means nothing was sent.
    while :; do
      x=$(printf 'EVALSHA %s 3 n:%s:%s s:%s:%s r:%s:%s %s %s\\nBLPOP r:%s:%s 0\\n' "$sha" $1 $2 $1 $2 $1 $2 "$N" "$i" $1 $2 | redis-cli -s "$sock" 2>&1)
      case $x in *"Could not connect"*) ;; *) break ;; esac
    done
    t=$EPOCHREALTIME
    x=\${x##*$'\\n'}
  fi
  log+="$1 $2 $e $t $x"$'\\n'
}
for r in $(seq 1 $R); do one b $r; done
for r in $(seq 1 $R); do one a $r; done
if [ $mode = shoal ]; then for r in $(seq 1 $R); do one d $r; done; fi
printf '%s' "$log" > "$dir/$i.tmp" && mv "$dir/$i.tmp" "$dir/$i"
`,
);
chmodSync(worker, 0o755);

function topology(name: string, args: string): string {
  const file = join(home, `${name}.xml`);
  writeFileSync(
    file,
    `<topology name="${name}">
  <decltask name="W"><exe reachable="true">${worker} ${args}</exe></decltask>
  <main name="main"><group name="g" n="${N}"><task>W</task></group></main>
</topology>`,
  );
  return file;
}

async function waitFiles(dir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (readdirSync(dir).filter((f) => !f.endsWith(".tmp")).length < N) {
    if (Date.now() > deadline) {
      throw new Error(`only ${readdirSync(dir).length} of ${N} workers finished in ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Kind {
  p50Ms: number;
  perGenMs: number[];
  early: number;
  wrong: number;
}

function analyse(dir: string, kinds: string[]): Record<string, Kind> {
  const rows = new Map<string, { e: number[]; t: number[]; x: string[] }>();
  for (const f of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, f), "utf8").trim().split("\n")) {
      const [k, r, e, t, ...x] = line.split(" ");
      const key = `${k} ${r}`;
      const row = rows.get(key) ?? { e: [], t: [], x: [] };
      rows.set(key, row);
      row.e.push(Number(e) * 1000);
      row.t.push(Number(t) * 1000);
      row.x.push(x.join(" "));
    }
  }
  const sum = String((BigInt(N) * BigInt(N - 1)) / 2n);
  const out: Record<string, Kind> = {};
  for (const k of kinds) {
    const per: number[] = [];
    let early = 0;
    let wrong = 0;
    for (let r = 1; r <= ROUNDS; r++) {
      const row = rows.get(`${k} ${r}`);
      if (!row || row.e.length !== N) {
        throw new Error(`${k} round ${r}: ${row?.e.length ?? 0} of ${N} members`);
      }
      const lastIn = Math.max(...row.e);
      early += row.t.filter((t) => t < lastIn).length;
      if (k === "a") wrong += row.x.filter((x) => x !== sum).length;
      if (r > 1) per.push(Math.round((Math.max(...row.t) - lastIn) * 10) / 10);
    }
    const sorted = [...per].sort((a, b) => a - b);
    out[k] = { p50Ms: sorted[sorted.length >> 1]!, perGenMs: per, early, wrong };
  }
  return out;
}

/** p50 round trip of a collective request answered by a leaf agent of the finished barrier "b". */
async function measureHop(agents: string[]): Promise<{ p50Ms: number; samples: number }> {
  await using c = await connectCommander(await openSession("bench"));
  const spec = { topologyId: "shoal", name: "b", group: "all", op: "barrier" as const, fanout: FANOUT };
  const tree = buildTree(agents, `shoal\0b\0all`, FANOUT);
  const leaf = tree.agents.find((a) => tree.children(a).length === 0 && a !== tree.root)!;
  const addr = (JSON.parse(shoal(["info", "--json"])) as { agents: { id: string; addrs?: string[] }[] })
    .agents
    .find((a) => a.id === leaf)?.addrs?.[0];
  const target = !addr ? leaf : addr.includes("/p2p/") ? addr : `${addr}/p2p/${leaf}`;
  const times: number[] = [];
  for (let i = 0; i < 60; i++) {
    const t0 = performance.now();
    await request(c.peer.node, target, COLL_PROTOCOL, { type: "missing", spec, gen: 1 }, {
      schema: CollResponseSchema,
      timeoutMs: 10_000,
    });
    if (i >= 10) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50Ms: Math.round(times[times.length >> 1]! * 10) / 10, samples: times.length };
}

function cpuMs(pids: number[]): number[] {
  return pids.map((pid) => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  });
}

async function phase(
  name: string,
  args: string,
  before?: () => Promise<void>,
): Promise<{ dir: string; ms: number }> {
  const dir = join(home, name);
  mkdirSync(dir);
  const t0 = Date.now();
  shoal(["topology", "activate", topology(name, `${args.replace("DIR", dir)}`), "--id", name]);
  await waitFiles(dir, 600_000);
  const ms = Date.now() - t0;
  await before?.();
  shoal(["topology", "stop", "--id", name, "--grace", "1"]);
  // The agents announce their freed slots by gossip: wait until the view has them all.
  for (let i = 0; i < 300; i++) {
    const agents =
      (JSON.parse(shoal(["info", "--json"])) as { agents: { slots: { free: number } }[] }).agents;
    if (agents.reduce((s, a) => s + a.slots.free, 0) >= N) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { dir, ms };
}

const redisDir = join(home, "redis-server");
mkdirSync(redisDir, { mode: 0o700 });
const sock = join(redisDir, "redis.sock");
const redis = spawn("redis-server", [
  "--port",
  "0",
  "--unixsocket",
  sock,
  "--unixsocketperm",
  "700",
  "--save",
  "",
  "--appendonly",
  "no",
  "--maxclients",
  "10000",
  "--tcp-backlog",
  "4096",
], { stdio: "ignore" });
const out: Record<string, unknown> = {
  bench: "collectives",
  tasks: N,
  agents: AGENTS,
  generations: G,
  fanout: FANOUT,
};
try {
  const deadline = Date.now() + 10_000;
  while (spawnSync("redis-cli", ["-s", sock, "PING"], { encoding: "utf8" }).stdout?.trim() !== "PONG") {
    if (Date.now() > deadline) throw new Error("redis-server did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
  const sha = spawnSync("redis-cli", ["-s", sock, "SCRIPT", "LOAD", BARRIER_LUA], { encoding: "utf8" }).stdout
    .trim();
  shoal(["up", "--agents", String(AGENTS), "--slots", String(Math.ceil(N / AGENTS))]);
  const session = JSON.parse(readFileSync(join(home, "sessions", "bench", "session.json"), "utf8")) as {
    jobs: { id: string; peerId: string }[];
  };
  const pids = session.jobs.map((j) => Number(j.id));
  const load0 = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
  const cpu0 = cpuMs(pids);
  let hop: { p50Ms: number; samples: number } | undefined;
  const s = await phase("shoal", `shoal DIR ${ROUNDS} ${N}`, async () => {
    hop = await measureHop(session.jobs.map((j) => j.peerId));
  });
  const cpu1 = cpuMs(pids);
  const r = await phase("redis", `redis DIR ${ROUNDS} ${N} ${sock} ${sha}`);
  const sh = analyse(s.dir, ["b", "a", "d"]);
  const rd = analyse(r.dir, ["b", "a"]);
  const ratio = (a: number, b: number) => Math.round((a / Math.max(0.1, b)) * 100) / 100;
  out.load = { start: Number(load0), end: Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]) };
  out.barrier = { shoalP50Ms: sh.b!.p50Ms, redisP50Ms: rd.b!.p50Ms, ratio: ratio(sh.b!.p50Ms, rd.b!.p50Ms) };
  out.allreduce = {
    shoalP50Ms: sh.a!.p50Ms,
    redisP50Ms: rd.a!.p50Ms,
    ratio: ratio(sh.a!.p50Ms, rd.a!.p50Ms),
  };
  out.checks = {
    releasedEarly: { shoal: sh.b!.early + sh.a!.early + sh.d!.early, redis: rd.b!.early + rd.a!.early },
    wrongSums: { shoal: sh.a!.wrong, redis: rd.a!.wrong },
  };
  out.perGeneration = {
    shoal: { b: sh.b!.perGenMs, a: sh.a!.perGenMs, fanout2: sh.d!.perGenMs },
    redis: { b: rd.b!.perGenMs, a: rd.a!.perGenMs },
  };
  // One more tree level (fan-out 2 over 4 agents: depth 2, against 1) costs one hop up and one down.
  const treeHopMs = Math.max(0, (sh.d!.p50Ms - sh.b!.p50Ms) / 2);
  // Measured directly, the cost of one tree edge: a collective request to a leaf agent and its answer.
  const hopMs = hop?.p50Ms ?? treeHopMs;
  const depth = (agents: number, k: number) => Math.ceil(Math.log(agents) / Math.log(k) - 1e-9);
  const phaseGens = 3 * ROUNDS;
  const agentCpu = cpu1.map((c, i) => c - cpu0[i]!);
  out.extrapolation = {
    hopMs: Math.round(hopMs * 10) / 10,
    hopHow:
      `p50 of ${hop?.samples ?? 0} collective requests from a light peer to a leaf agent (answered there, ` +
      `no further hop); (p50 fan-out 2 − p50 fan-out 8) / 2 = ${Math.round(treeHopMs)} ms in the same run`,
    model:
      "barrier(A agents) ≈ p50(4 agents, depth 1) + 2 × (ceil(log_k A) − 1) × hopMs, local combine unchanged " +
      "at N/A tasks per agent; messages per agent per generation ≤ 1 up + k down, whatever A",
    predictedBarrierMs: Object.fromEntries(
      [4, 64, 512, 4096].map((
        a,
      ) => [a, Math.round(sh.b!.p50Ms + 2 * Math.max(0, depth(a, FANOUT) - 1) * hopMs)]),
    ),
    depth: Object.fromEntries([4, 64, 512, 4096].map((a) => [a, depth(a, FANOUT)])),
    agentCpuMsPerGeneration: agentCpu.map((c) => Math.round(c / phaseGens)),
    agentCpuNote: `each agent's CPU over the whole shoal phase (spawning ${
      N / AGENTS
    } tasks and stopping them included) / ${phaseGens} generations`,
  };
  out.phaseMs = { shoal: s.ms, redis: r.ms };
} finally {
  spawnSync(bin, ["down", "--grace", "5"], { env });
  redis.kill("SIGTERM");
  rmSync(home, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
process.exit(0);

/**
 * The shared pool under load: 20 topologies of 50 `sleep` tasks each, queued at once in four equal-priority
 * share groups (5 each, queued group after group), on 4 local agents with room for 3 topologies at a time.
 * Measures the time until all have run against the ideal (the sum of their run times divided by the
 * parallelism, 3), from the same run; and Jain's fairness index over the share groups' mean completion
 * times, against what first-come-first-served would have given with the same run times.
 *
 * Run: `npx deno task bench pool` or `npx deno run -A bench/pool.ts [topologies] [tasks] [seconds]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMeshNode, readSwarmKey } from "../mesh/mod.ts";
import { fetchPool, queueTopology } from "../pool/mod.ts";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const TOPOLOGIES = Number(process.argv[2] ?? 20);
const TASKS = Number(process.argv[3] ?? 50);
const SECONDS = Number(process.argv[4] ?? 3);
const AGENTS = 4;
const PARALLEL = 3;
const GROUPS = ["alice", "bob", "carol", "dave"];
const home = mkdtempSync(join(tmpdir(), "shoal-bench-pool-"));
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };

function shoal(args: string[]): string {
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Jain's fairness index: 1 when all equal, 1/n when one gets everything. */
export function jain(xs: number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const sq = xs.reduce((a, b) => a + b * b, 0);
  return sq === 0 ? 1 : (sum * sum) / (xs.length * sq);
}

/** Completion times of `runs` (in queue order) on `parallel` lanes, first come first served. */
function fifoCompletions(runs: number[], parallel: number): number[] {
  const lanes = Array(parallel).fill(0) as number[];
  return runs.map((r) => {
    const i = lanes.indexOf(Math.min(...lanes));
    lanes[i]! += r;
    return lanes[i]!;
  });
}

const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

try {
  // Room for 3 topologies of 50 at a time, not 4: 39 slots each on 4 agents is 156.
  const slots = Math.floor((PARALLEL * TASKS + (AGENTS - 1)) / AGENTS) + 1;
  shoal(["up", "--agents", String(AGENTS), "--slots", String(slots)]);
  const session = JSON.parse(readFileSync(join(home, "sessions", "bench", "session.json"), "utf8")) as {
    id: string;
    jobs: { addrs: string[] }[];
  };
  const node = await createMeshNode({
    swarmKey: await readSwarmKey(join(home, "sessions", "bench", "swarm.key")),
  });
  const init = { node, via: session.jobs[0]!.addrs[0]!, sessionId: session.id };
  try {
    const order: { id: string; share: string }[] = [];
    for (const share of GROUPS) {
      for (let i = 0; i < TOPOLOGIES / GROUPS.length; i++) order.push({ id: `${share}${i}`, share });
    }
    const t0 = Date.now();
    for (const q of order) {
      await queueTopology(init, {
        id: q.id,
        share: q.share,
        file: `${q.id}.xml`,
        vars: {},
        source:
          `<topology name="${q.id}"><decltask name="s"><exe reachable="true">sleep ${SECONDS}</exe></decltask>` +
          `<main name="main"><group name="g" n="${TASKS}"><task>s</task></group></main></topology>`,
      });
    }
    const queuedMs = Date.now() - t0;
    let view = await fetchPool(init);
    for (;;) {
      view = await fetchPool(init);
      if (view.entries.filter((e) => e.state === "done").length === order.length) break;
      if (Date.now() - t0 > 600_000) throw new Error("not all topologies ran within 10 minutes");
      await new Promise((r) => setTimeout(r, 250));
    }
    const totalMs = Math.max(...view.entries.map((e) => e.endedAt!)) - t0;
    const byId = new Map(view.entries.map((e) => [e.id, e]));
    const runs = order.map((q) => byId.get(q.id)!.endedAt! - byId.get(q.id)!.startedAt!);
    const ideal = runs.reduce((a, b) => a + b, 0) / PARALLEL;
    const completion = (id: string) => byId.get(id)!.endedAt! - t0;
    const groupMeans = GROUPS.map((g) =>
      mean(order.filter((q) => q.share === g).map((q) => completion(q.id)))
    );
    const fifo = fifoCompletions(runs, PARALLEL);
    const fifoMeans = GROUPS.map((g) => mean(order.flatMap((q, i) => q.share === g ? [fifo[i]!] : [])));
    const startOrder = [...view.entries].sort((a, b) => a.startedAt! - b.startedAt!).map((e) => e.share[0])
      .join("");
    console.log(JSON.stringify({
      bench: "pool",
      topologies: order.length,
      tasksEach: TASKS,
      taskSeconds: SECONDS,
      agents: AGENTS,
      parallelism: PARALLEL,
      queuedMs,
      totalMs,
      idealMs: round(ideal),
      baseline: "sum of the topologies' run times (start to last task ended) divided by the parallelism",
      ratio: round(totalMs / ideal, 2),
      meanRunMs: round(mean(runs)),
      jainFairness: round(jain(groupMeans), 3),
      jainFifoSameRuns: round(jain(fifoMeans), 3),
      groupMeanCompletionMs: Object.fromEntries(GROUPS.map((g, i) => [g, round(groupMeans[i]!)])),
      startOrder,
    }));
  } finally {
    await node.stop();
  }
} finally {
  spawnSync(bin, ["down", "--grace", "5"], { env });
  rmSync(home, { recursive: true, force: true });
}
process.exit(0);

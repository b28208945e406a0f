/**
 * The membership protocol at sizes no machine here can run as processes: the real `mesh/swim.ts` under the
 * simulator (`mesh/sim.ts`: virtual time, 0.5–2 ms latency, 1 % message loss). For each N it forms the mesh,
 * idles, lets one member join and one crash, and prints one JSON line: messages sent per member per second
 * idle, rounds (gossip intervals, 200 ms) until the join and the death reach every member, false deaths
 * under loss, and the same figures for N = 100 as the same-run baseline (`msgRatio`, `deathRoundsRatio`).
 *
 * Run: `npx deno run -A --v8-flags=--max-old-space-size=16000 bench/mesh_sim.ts [N…]` (default 100 1000).
 * Memory grows as N² (every member holds the whole view), so 10,000 needs about 16 GB of heap.
 *
 * @module
 */
import { Simulation } from "../mesh/sim.ts";
import { DEFAULT_TIMING } from "../mesh/swim_timing.ts";

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const round = DEFAULT_TIMING.gossipIntervalMs;

function until(sim: Simulation, pred: () => boolean, maxMs: number): number {
  const start = sim.now;
  while (!pred()) {
    if (sim.now - start > maxMs) return Infinity;
    sim.run(round / 2);
  }
  return sim.now - start;
}

let base: { msgs: number; deathRounds: number } | undefined;
for (const n of sizes.length ? sizes : [100, 1_000]) {
  const t0 = performance.now();
  const sim = new Simulation({ seed: 11, loss: 0.01 });
  const formedMs = sim.form(n, { staggerMs: Math.max(1, 2_000 / n), timeoutMs: 300_000 });
  sim.run(20_000); // settle
  const sent0 = sim.sent();
  const idleS = 20;
  sim.run(idleS * 1_000);
  const msgs = (sim.sent() - sent0) / n / idleS;
  const joiner = `j${n}`;
  sim.add(joiner, "n0");
  const joinMs = until(sim, () => sim.seenAs(joiner, "alive") === n, 120_000);
  const victim = `n${Math.floor(n / 2)}`;
  sim.crash(victim);
  const deathMs = until(sim, () => sim.seenAs(victim, "dead") === n, 120_000);
  const falseDeaths = sim.events.filter((e) => e.type === "agent:dead" && e.id !== victim).length;
  const falseSuspects = sim.events.filter((e) => e.type === "agent:suspect" && e.id !== victim).length;
  const links = [...sim.nodes.values()].filter((x) => x.up).map((x) => x.swim.links().length);
  const row = {
    scenario: "mesh_sim",
    members: n,
    formedMs: Math.round(formedMs),
    idleMsgsPerMemberPerS: Math.round(msgs * 100) / 100,
    linksMax: Math.max(...links),
    joinRounds: Math.round(joinMs / round),
    deathRounds: Math.round(deathMs / round),
    log2N: Math.round(Math.log2(n) * 10) / 10,
    loss: 0.01,
    falseDeaths,
    falseSuspects,
    wallS: Math.round((performance.now() - t0) / 100) / 10,
    heapMb: Math.round(process.memoryUsage().heapUsed / 1e6),
    ...(base
      ? {
        baseline: { members: sizes[0] ?? 100, ...base },
        msgRatio: Math.round(msgs / base.msgs * 100) / 100,
        deathRoundsRatio: Math.round(deathMs / round / base.deathRounds * 100) / 100,
      }
      : {}),
  };
  base ??= { msgs, deathRounds: deathMs / round };
  console.log(JSON.stringify(row));
}

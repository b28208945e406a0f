/**
 * Staging a 256 MiB file to 8 local agents with `shoal stage put` (a swarm: agents pull chunks from each
 * other, the command seeds each chunk about once), against two baselines in the same run: the same command
 * with `--one-at-a-time` (this host sends the whole file to one agent after the other, as a lease ships
 * bytes today), and `cp` of the file 8 times on the same disk (the physical floor: no network, no crypto).
 * Times are the transfers (`elapsedMs` of `--json`: after hashing and connecting). Prints one JSON line
 * with MB/s (10^6 bytes per second, over the 8 copies) and ratios.
 *
 * Run: `npx deno run -A bench/stage.ts [MiB] [agents]` (after `deno task build`; default 256 and 8).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { randomFillSync } from "node:crypto";

const MIB = Number(process.argv[2] ?? 256);
const AGENTS = Math.min(8, Number(process.argv[3] ?? 8));
const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "shoal-bench-stage-"));
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };

function shoal(args: string[]): string {
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

interface Put {
  elapsedMs: number;
  seed: { bytes: number };
  agents: { ok: boolean; ms: number; fromPeers: number }[];
}

const mbps = (bytes: number, ms: number) => Math.round(bytes / 1e6 / (ms / 1000) * 10) / 10;

try {
  const file = join(home, "data.bin");
  const fd = openSync(file, "w");
  const block = new Uint8Array(1024 * 1024);
  for (let i = 0; i < MIB; i++) writeSync(fd, randomFillSync(block));
  closeSync(fd);
  const bytes = MIB * 1024 * 1024;
  const load = [loadavg()[0]!];

  // The floor: 8 copies on the same disk, each flushed like the agents' files are not (page cache).
  const t0 = performance.now();
  for (let i = 0; i < AGENTS; i++) {
    const r = spawnSync("cp", [file, join(home, `copy${i}.bin`)]);
    if (r.status !== 0) throw new Error(`cp failed: ${r.stderr}`);
  }
  const cpMs = performance.now() - t0;
  for (let i = 0; i < AGENTS; i++) rmSync(join(home, `copy${i}.bin`));

  shoal(["up", "--agents", String(AGENTS), "--slots", "1"]);
  load.push(loadavg()[0]!);
  const serial = JSON.parse(
    shoal(["stage", "put", file, "--name", "serial", "--one-at-a-time", "--json"]),
  ) as Put;
  shoal(["stage", "rm", "serial"]);
  load.push(loadavg()[0]!);
  const swarm = JSON.parse(shoal(["stage", "put", file, "--name", "swarm", "--json"])) as Put;
  load.push(loadavg()[0]!);
  for (const p of [serial, swarm]) {
    if (p.agents.length !== AGENTS || p.agents.some((a) => !a.ok)) {
      throw new Error(`a put failed: ${JSON.stringify(p)}`);
    }
  }
  const total = bytes * AGENTS;
  const agentMs = swarm.agents.map((a) => a.ms).sort((a, b) => a - b);
  console.log(JSON.stringify({
    bench: "stage",
    mib: MIB,
    agents: AGENTS,
    swarmS: Math.round(swarm.elapsedMs) / 1000,
    swarmMBps: mbps(total, swarm.elapsedMs),
    swarmSeedSentMiB: Math.round(swarm.seed.bytes / 1024 / 1024),
    swarmFromPeersMiB: Math.round(swarm.agents.reduce((n, a) => n + a.fromPeers, 0) / 1024 / 1024),
    swarmAgentMs: {
      first: agentMs[0],
      median: agentMs[Math.floor(agentMs.length / 2)],
      last: agentMs.at(-1),
    },
    baseline: "the same command with --one-at-a-time: this host sends the file to each agent in turn",
    serialS: Math.round(serial.elapsedMs) / 1000,
    serialMBps: mbps(total, serial.elapsedMs),
    floor: `cp of the file ${AGENTS} times on the same disk`,
    cpS: Math.round(cpMs) / 1000,
    cpMBps: mbps(total, cpMs),
    ratioSwarmVsSerial: Math.round(serial.elapsedMs / swarm.elapsedMs * 100) / 100,
    ratioSwarmVsCp: Math.round(swarm.elapsedMs / cpMs * 10) / 10,
    load1: load.map((l) => Math.round(l * 10) / 10),
  }));
} finally {
  spawnSync(bin, ["down", "--grace", "2"], { env });
  rmSync(home, { recursive: true, force: true });
}
process.exit(0);

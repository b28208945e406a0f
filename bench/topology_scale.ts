/**
 * Topology at ALICE production scale: ~175,000 tasks in collections and groups for 300 agents, written to a
 * file. Each of `--runs` runs (default 5) is a fresh child process of the runtime the binary is built with
 * (Bun; run this file with it, as `bench/run_all.ts` does) that reads the file, parses, validates and
 * expands it and exits: its time from reading, its whole process time and its peak RSS (the kernel's
 * high-water mark, start-up included). The parent then times diff against a one-task-changed copy and
 * placement. Medians; prints one JSON line.
 *
 * DDS: with `DDS_LOCATION` set to a DDS installation, `dds-topology --validate` runs on the same file the
 * same number of times, measured the same way (process time, peak RSS), and ratios are printed. Without it
 * DDS's figures are an external reference only (ALICE's real topology on another machine, not this file),
 * reported under `externalReference` with no ratio.
 *
 * Run: `node_modules/.bin/bun run bench/topology_scale.ts [--runs 5]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { diffTopologies, expandTopology, loadTopology, placeTasks } from "../topology/mod.ts";
import type { AgentSlots } from "../topology/mod.ts";

const AGENTS = 300;
const TASK_KINDS = 60;
/** Task entries of one EPN collection (n summed): 300 × 580 + 1000 calibration tasks = 175,000. */
const PER_COLLECTION = 580;
const CALIB = 1000;

/** Builds an ALICE-like topology: one reconstruction collection per EPN, plus a calibration group. */
export function aliceLikeTopology(changedKind = -1): string {
  const out: string[] = [`<topology name="o2-dataflow">`];
  out.push(`<var name="shm" value="--shm-segment-size 90000000000 --shm-throw-bad-alloc false"/>`);
  out.push(`<var name="nEpn" value="${AGENTS}"/>`, `<var name="nCalib" value="${CALIB}"/>`);
  for (let p = 0; p < 40; p++) out.push(`<property name="channel-${p}" scope="collection"/>`);
  out.push(`<property name="calib-result"/>`);
  out.push(`<declrequirement name="epn-host" type="hostname" value="epn[0-9]{3}\\.cern\\.ch"/>`);
  out.push(`<declrequirement name="calib-host" type="hostname" value="calib[0-9]+\\.cern\\.ch"/>`);
  out.push(`<decltrigger name="restart" condition="TaskCrashed" action="RestartTask" arg="3"/>`);
  for (let k = 0; k < TASK_KINDS; k++) {
    const tweak = k === changedKind ? " --changed" : "";
    out.push(
      `<decltask name="o2-device-${k}"><exe reachable="false">o2-dpl-device-${k} --id o2-device-${k}_%taskIndex%` +
        ` \${shm} --session default --severity info --infologger-severity warning --rate 1000` +
        ` --pipeline reco:${k % 7} --timeframes-rate-limit 2 --resources-monitoring 15${tweak}</exe>` +
        `<properties><name access="write">channel-${k % 40}</name><name access="read">channel-${
          (k + 1) % 40
        }</name></properties><triggers><name>restart</name></triggers></decltask>`,
    );
  }
  out.push(
    `<decltask name="calib"><exe>o2-calibration-workflow --lane %taskIndex% \${shm}</exe>` +
      `<requirements><name>calib-host</name></requirements>` +
      `<properties><name access="write">calib-result</name></properties></decltask>`,
  );
  out.push(`<declcollection name="epn-reco"><requirements><name>epn-host</name></requirements><tasks>`);
  let left = PER_COLLECTION;
  for (let k = 0; left > 0; k = (k + 1) % TASK_KINDS) {
    const n = Math.min(left, 1 + (k % 16));
    out.push(n === 1 ? `<name>o2-device-${k}</name>` : `<name n="${n}">o2-device-${k}</name>`);
    left -= n;
  }
  out.push(`</tasks></declcollection>`);
  out.push(`<main name="main">`);
  out.push(`<group name="epns" n="\${nEpn}"><collection>epn-reco</collection></group>`);
  out.push(`<group name="calibration" n="\${nCalib}"><task>calib</task></group>`);
  out.push(`</main></topology>`);
  return out.join("\n");
}

function agents(): AgentSlots[] {
  const list: AgentSlots[] = [];
  for (let i = 0; i < AGENTS; i++) {
    list.push({ id: `agent-${i}`, host: `epn${String(i).padStart(3, "0")}.cern.ch`, freeSlots: 600 });
  }
  for (let i = 0; i < 10; i++) list.push({ id: `calib-${i}`, host: `calib${i}.cern.ch`, freeSlots: 100 });
  return list;
}

const here = fileURLToPath(import.meta.url);
const round = (x: number) => Math.round(x);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

// ---- child mode: one measured run in a fresh process ---------------------------------------------------

/** This process's peak RSS: `VmHWM`, the high-water mark of its own memory since exec. */
function ownPeakRssMB(): number {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
}

if (process.argv[2] === "--child") {
  const file = process.argv[3]!;
  const t0 = performance.now();
  const topo = await loadTopology(file);
  const t1 = performance.now();
  const expanded = expandTopology(topo);
  const t2 = performance.now();
  console.log(JSON.stringify({
    tasks: expanded.tasks.length,
    collections: expanded.collections.length,
    readParseMs: t1 - t0,
    expandMs: t2 - t1,
    peakRssMB: ownPeakRssMB(),
  }));
  process.exit(0);
}
if (process.argv[2] === "--child-empty") {
  // The same imports and nothing else: the runtime's own share of the peak.
  console.log(JSON.stringify({ peakRssMB: ownPeakRssMB() }));
  process.exit(0);
}

// ---- bench mode ----------------------------------------------------------------------------------------

interface Measured {
  status: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Peak RSS of the child as GNU time reports it, or null without `/usr/bin/time`. */
  peakRssMB: number | null;
}

const GNU_TIME = "/usr/bin/time";

/**
 * Runs a child to its end; the same measure for shoal's runs and DDS's. The peak RSS comes from GNU time,
 * a small process in between: a child's `ru_maxrss` as its parent reads it starts at the parent's own RSS
 * (Linux carries the forked copy's high-water mark over exec), which would add this bench's memory to it.
 */
function measure(
  cmd: string,
  args: string[],
  env: Record<string, string | undefined> = process.env,
): Measured {
  const time = existsSync(GNU_TIME);
  const t0 = performance.now();
  const r = time
    ? spawnSync(GNU_TIME, ["-f", "%M", cmd, ...args], { env, encoding: "utf8", maxBuffer: 1 << 24 })
    : spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 1 << 24 });
  const wallMs = performance.now() - t0;
  const lines = (r.stderr ?? "").trimEnd().split("\n");
  const kb = time ? Number(lines.pop()) : NaN;
  return {
    status: r.status,
    stdout: r.stdout ?? "",
    stderr: lines.join("\n"),
    wallMs,
    peakRssMB: Number.isFinite(kb) ? Math.round(kb / 1024) : null,
  };
}

/** The command line that runs this file in the current runtime. */
function selfArgs(...args: string[]): [string, string[]] {
  return "Deno" in globalThis
    ? [process.execPath, ["run", "-A", here, ...args]]
    : [process.execPath, ["run", here, ...args]];
}

/** `dds-topology` of the DDS installation at `DDS_LOCATION` with the environment it needs, or why not. */
function ddsTopology(): { bin: string; env: Record<string, string | undefined> } | string {
  const location = process.env.DDS_LOCATION;
  if (!location) return "DDS_LOCATION is not set";
  const bin = join(location, "bin", "dds-topology");
  if (!existsSync(bin)) return `${bin} does not exist`;
  const lib = [join(location, "lib"), process.env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  return {
    bin,
    env: { ...process.env, PATH: `${join(location, "bin")}:${process.env.PATH}`, LD_LIBRARY_PATH: lib },
  };
}

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Math.max(1, Number(process.argv[runsArg + 1])) : 5;
const dir = mkdtempSync(join(tmpdir(), "shoal-bench-topo-"));
try {
  const file = join(dir, "alice-like.xml");
  const changedFile = join(dir, "alice-like-changed.xml");
  writeFileSync(file, aliceLikeTopology());
  writeFileSync(changedFile, aliceLikeTopology(7));
  const [cmd, args] = selfArgs("--child", file);
  const runs: {
    tasks: number;
    collections: number;
    readParseMs: number;
    expandMs: number;
    peakRssMB: number;
  }[] = [];
  const walls: number[] = [];
  const outerRss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = measure(cmd, args);
    if (r.status !== 0) throw new Error(`child run failed (${r.status}): ${r.stderr}`);
    runs.push(JSON.parse(r.stdout));
    walls.push(r.wallMs);
    if (r.peakRssMB !== null) outerRss.push(r.peakRssMB);
  }
  const [ecmd, eargs] = selfArgs("--child-empty");
  const empty = measure(ecmd, eargs);
  if (empty.status !== 0) throw new Error(`empty child failed (${empty.status}): ${empty.stderr}`);

  // Diff and placement in this process, on topologies read from the files.
  const expanded = expandTopology(await loadTopology(file));
  const changed = expandTopology(await loadTopology(changedFile));
  const agentList = agents();
  const diffs: number[] = [];
  const places: number[] = [];
  let diff = diffTopologies(expanded, changed);
  let plan = placeTasks(expanded, agentList);
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    diff = diffTopologies(expanded, changed);
    diffs.push(performance.now() - t);
    t = performance.now();
    plan = placeTasks(expanded, agentList);
    places.push(performance.now() - t);
  }

  const shoal = {
    readParseExpandMs: round(median(runs.map((r) => r.readParseMs + r.expandMs))),
    readParseMs: round(median(runs.map((r) => r.readParseMs))),
    expandMs: round(median(runs.map((r) => r.expandMs))),
    processMs: round(median(walls)),
    peakRssMB: median(outerRss.length ? outerRss : runs.map((r) => r.peakRssMB)),
    ownVmHwmMB: median(runs.map((r) => r.peakRssMB)),
    emptyProcessPeakRssMB: empty.peakRssMB ?? (JSON.parse(empty.stdout) as { peakRssMB: number }).peakRssMB,
  };
  const dds = ddsTopology();
  let baseline: Record<string, unknown>;
  if (typeof dds !== "string") {
    const ddsWalls: number[] = [];
    const ddsRss: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = measure(dds.bin, ["--validate", file], dds.env);
      if (r.status !== 0) {
        throw new Error(`dds-topology --validate failed (${r.status}): ${r.stderr}${r.stdout}`);
      }
      ddsWalls.push(r.wallMs);
      if (r.peakRssMB !== null) ddsRss.push(r.peakRssMB);
    }
    const ddsMs = round(median(ddsWalls));
    const ddsMB = ddsRss.length ? median(ddsRss) : null;
    baseline = {
      ddsSameRun: {
        command: `${dds.bin} --validate <the same file>`,
        processMs: ddsMs,
        peakRssMB: ddsMB,
      },
      processRatio: Math.round(shoal.processMs / Math.max(1, ddsMs) * 100) / 100,
      peakRssRatio: ddsMB ? Math.round(shoal.peakRssMB / ddsMB * 100) / 100 : null,
    };
  } else {
    baseline = {
      externalReference: {
        notMeasuredHere: `${dds}; no DDS run on this file, so no ratio`,
        source: "DDS's C++ parse+expand of ALICE's real topology (another file, another machine)",
        ddsParseExpandMs: 1650,
        ddsMemoryMB: 108,
      },
    };
  }
  console.log(JSON.stringify({
    bench: "topology_scale",
    runtime: "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node",
    runs: RUNS,
    measure: "median of fresh processes: read the file, parse, validate, expand; peak RSS of that process",
    xmlBytes: readFileSync(file).length,
    tasks: runs[0]!.tasks,
    collections: runs[0]!.collections,
    agents: agentList.length,
    ...shoal,
    diffMs: round(median(diffs)),
    diffRemoved: diff.removedTasks.length,
    diffAdded: diff.addedTasks.length,
    placeMs: round(median(places)),
    placed: plan.assignments.length,
    unplaced: plan.unplaced.length,
    ...baseline,
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

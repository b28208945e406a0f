/**
 * Topology at ALICE production scale: ~175,000 tasks in collections and groups for 300 agents.
 * Times parse, expand, diff against a one-task-changed copy, and placement; prints one JSON line.
 * DDS's C++ reference for parse+expand of ALICE's topology: 1.65 s, 108 MB.
 *
 * Run: `npx deno run -A bench/topology_scale.ts` or `npx bun bench/topology_scale.ts`.
 *
 * @module
 */
import process from "node:process";
import { diffTopologies, expandTopology, parseTopology, placeTasks } from "../topology/mod.ts";
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

const mb = (bytes: number) => Math.round(bytes / 1048576);
let peakRss = 0;
const sample = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const time = <T>(fn: () => T): [T, number] => {
  const t0 = performance.now();
  const r = fn();
  const ms = performance.now() - t0;
  sample();
  return [r, Math.round(ms)];
};

const xml = aliceLikeTopology();
const changed = aliceLikeTopology(7);
const agentList = agents();
sample();
(globalThis as { gc?: () => void }).gc?.();
const baseRss = process.memoryUsage().rss;
const baseHeap = process.memoryUsage().heapUsed;
const [topo, parseMs] = time(() => parseTopology(xml, { file: "alice-like.xml" }));
const [expanded, expandMs] = time(() => expandTopology(topo));
const rssAfterExpand = process.memoryUsage().rss;
// Live heap of the expanded topology, when the runtime lets us collect garbage first.
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const liveHeapMB = gc ? mb(process.memoryUsage().heapUsed - baseHeap) : null;
const [changedExpanded, parseExpandChangedMs] = time(() => expandTopology(parseTopology(changed)));
const [diff, diffMs] = time(() => diffTopologies(expanded, changedExpanded));
const [plan, placeMs] = time(() => placeTasks(expanded, agentList));

console.log(JSON.stringify({
  bench: "topology_scale",
  runtime: "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node",
  xmlBytes: xml.length,
  tasks: expanded.tasks.length,
  collections: expanded.collections.length,
  agents: agentList.length,
  parseMs,
  expandMs,
  parseExpandMs: parseMs + expandMs,
  parseExpandChangedMs,
  diffMs,
  diffRemoved: diff.removedTasks.length,
  diffAdded: diff.addedTasks.length,
  placeMs,
  placed: plan.assignments.length,
  unplaced: plan.unplaced.length,
  baseRssMB: mb(baseRss),
  parseExpandExtraRssMB: mb(rssAfterExpand - baseRss),
  liveHeapMB,
  peakRssMB: mb(peakRss),
  reference: { ddsParseExpandMs: 1650, ddsMB: 108 },
}));

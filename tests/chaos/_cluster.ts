/**
 * A chaos cluster: agents in network namespaces (`../_netns.ts`) running one topology of writer tasks, with
 * what the chaos tests read: live instances per task path (from the tasks' own pid files, so a duplicate
 * the mesh does not know of still counts), what each side's key-value replica holds, the agents' logs.
 *
 * @module
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSwarmKey } from "../../mesh/mod.ts";
import { isRunning, type RunResult, runShoal, SHOAL_BIN } from "../_harness.ts";
import {
  agentLog,
  createNamespaces,
  type Namespaces,
  type NsAgent,
  startNsAgent,
  stopNsAgents,
} from "../_netns.ts";
import { waitFor } from "../_wait.ts";

/** A running chaos cluster; dispose to stop every agent and remove everything. */
export interface Cluster extends AsyncDisposable {
  net: Namespaces;
  dir: string;
  agents: NsAgent[];
  /** Starts one more agent on `side` (bootstrapping through the first agent). */
  add(side: number, name: string, slots: number): Promise<NsAgent>;
  /** Runs the CLI in this namespace against the mesh through the first agent of `side` (default 0). */
  run(args: string[], side?: number): Promise<RunResult>;
  /** Live instances per task index, as the tasks' pid files and `/proc` say. */
  instances(): Map<number, number[]>;
  /** Task index → the value of `Beat` that the task last had acknowledged (its ack log's last line). */
  lastAcked(): Map<number, string>;
  /** Task index → value of `Beat`, as the replica of the first agent of `side` holds it. */
  kvOf(side: number): Promise<Map<number, string>>;
  /** Makes every writer stop writing. */
  stopWriting(): void;
  /** Log lines of every agent matching `re`. */
  logLines(re: RegExp): { agent: string; line: string }[];
}

/** A topology of `n` writer tasks, one per host (hostnames are the agents' names). */
function writers(n: number, script: string): string {
  return `<topology name="Chaos">
  <property name="Beat"/>
  <declrequirement name="onePerHost" type="maxinstances" value="1"/>
  <decltask name="Writer">
    <exe reachable="true">${script}</exe>
    <requirements><name>onePerHost</name></requirements>
    <properties><name access="write">Beat</name></properties>
  </decltask>
  <main name="main"><group name="g" n="${n}"><task>Writer</task></group></main>
</topology>`;
}

/**
 * Starts agents `layout[i]` per namespace `i` (1 slot each, host names a0, a1, …, b0, …), then activates
 * `tasks` writer tasks — one per host — and waits until each runs once.
 */
export async function startCluster(
  layout: number[],
  tasks: number,
  options: { activateArgs?: string[] } = {},
): Promise<Cluster> {
  const net = createNamespaces(layout.length);
  const dir = mkdtempSync(join(tmpdir(), "shoal-chaos-"));
  const swarmKeyFile = join(dir, "swarm.key");
  writeFileSync(swarmKeyFile, createSwarmKey());
  const runDir = join(dir, "run");
  mkdirSync(runDir);
  const script = join(dir, "writer.sh");
  // Each instance writes a pid file (so duplicates count even when no agent lists them), then puts a new
  // value of Beat every second and logs each one its agent acknowledged.
  writeFileSync(
    script,
    `#!/bin/sh
echo "$DDS_TASK_INDEX" > "${runDir}/pid.$$"
i=0
while :; do
  if [ ! -e "${runDir}/stop-writing" ]; then
    i=$((i+1)); v="$DDS_TASK_INDEX:$$:$i"
    ${SHOAL_BIN} kv put Beat "$v" && echo "$v" >> "${runDir}/ack.$DDS_TASK_INDEX"
  fi
  sleep 1
done
`,
  );
  chmodSync(script, 0o755);
  const agents: NsAgent[] = [];
  const home = join(dir, "home");
  const sessions = new Map<number, string>();
  /** One session per side, each reaching the mesh through that side's first agent. */
  const sessionFor = (side: number) => {
    let name = sessions.get(side);
    if (name) return name;
    const first = agents.find((a) => a.side === side)!;
    name = `side${side}`;
    const sdir = join(home, "sessions", name);
    mkdirSync(sdir, { recursive: true });
    writeFileSync(join(sdir, "swarm.key"), readFileSync(swarmKeyFile));
    writeFileSync(
      join(sdir, "session.json"),
      JSON.stringify({ name, id: "chaos", createdAt: Date.now(), jobs: [], bootstrap: [first.addr] }),
    );
    sessions.set(side, name);
    return name;
  };
  const run = (args: string[], side = 0) =>
    runShoal([...args, "--session", sessionFor(side)], { env: { SHOAL_HOME: home }, timeoutMs: 60_000 });
  const add = async (side: number, name: string, slots: number) => {
    const a = await startNsAgent(net, side, {
      name,
      dir,
      swarmKeyFile,
      ...(agents[0] ? { bootstrap: agents[0].addr } : {}),
      args: ["--slots", String(slots), "--host", name],
    });
    agents.push(a);
    return a;
  };
  const dispose = async () => {
    await stopNsAgents(agents);
    net[Symbol.dispose]();
    if (process.env.SHOAL_CHAOS_KEEP) console.log(`chaos: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const [side, n] of layout.entries()) {
      for (let i = 0; i < n; i++) await add(side, `${String.fromCharCode(97 + side)}${i}`, 1);
    }
    await waitFor(async () => {
      const r = await run(["info", "--json"]);
      if (r.code !== 0) return false;
      const info = JSON.parse(r.stdout) as { agents: { state: string }[] };
      return info.agents.filter((a) => a.state === "alive").length === agents.length;
    }, { timeout: 30_000, what: "every agent alive in the view" });
    const file = join(dir, "chaos.xml");
    writeFileSync(file, writers(tasks, script));
    // Activation is all or nothing, so a second try after a lease lost to an overloaded machine is safe; it
    // is the setup, not what these tests are about.
    const activate = ["topology", "activate", file, ...(options.activateArgs ?? [])];
    let act = await run(activate);
    if (act.code !== 0 && /timed out/.test(act.stderr)) {
      console.warn(`chaos: activation failed once, retrying: ${act.stderr.trim()}`);
      act = await run(activate);
    }
    if (act.code !== 0) throw new Error(`activate failed (${act.code}): ${act.stderr}`);
  } catch (err) {
    await dispose();
    throw err;
  }
  const instances = () => {
    const out = new Map<number, number[]>();
    for (const f of readdirSync(runDir)) {
      const m = /^pid\.(\d+)$/.exec(f);
      if (!m) continue;
      const pid = Number(m[1]);
      if (!isRunning(pid)) continue;
      const index = Number(readFileSync(join(runDir, f), "utf8").trim());
      out.set(index, [...(out.get(index) ?? []), pid]);
    }
    return out;
  };
  const cluster: Cluster = {
    net,
    dir,
    agents,
    add,
    run,
    instances,
    lastAcked: () => {
      const out = new Map<number, string>();
      for (const f of readdirSync(runDir)) {
        const m = /^ack\.(\d+)$/.exec(f);
        if (!m) continue;
        const lines = readFileSync(join(runDir, f), "utf8").trim().split("\n");
        out.set(Number(m[1]), lines.at(-1)!);
      }
      return out;
    },
    kvOf: async (side) => {
      const r = await run(["kv", "get", "Beat", "--json"], side);
      if (r.code !== 0) throw new Error(`kv get failed (${r.code}): ${r.stderr}`);
      const out = new Map<number, string>();
      for (const v of (JSON.parse(r.stdout) as { values: { value: string }[] }).values) {
        out.set(Number(v.value.split(":")[0]), v.value);
      }
      return out;
    },
    stopWriting: () => writeFileSync(join(runDir, "stop-writing"), ""),
    logLines: (re) =>
      agents.flatMap((a) =>
        agentLog(a.dataDir).split("\n").filter((l) => re.test(l)).map((line) => ({ agent: a.name, line }))
      ),
    [Symbol.asyncDispose]: dispose,
  };
  await waitFor(() => {
    const live = instances();
    return live.size === tasks && [...live.values()].every((p) => p.length === 1);
  }, { timeout: 30_000, what: `each of the ${tasks} tasks to run once` });
  return cluster;
}

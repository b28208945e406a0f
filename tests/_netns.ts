/**
 * Network namespaces for partition tests: `n` namespaces on one bridge, agents started inside them, links
 * cut and healed. Needs root and `ip` (iproute2); `.ci/setup-netns.sh` provides it. Suites skip with one
 * line naming that script when it is missing, and fail under `CI=true`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readStateFile } from "../agent/mod.ts";
import { SHOAL_BIN } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  return { ok: r.status === 0, err: (r.stderr ?? r.error?.message ?? "").trim() };
}

/** Why namespaces cannot be made here (undefined when they can). */
export const NETNS_MISSING: string | undefined = process.getuid?.() !== 0
  ? "needs root for network namespaces"
  : !ip("-V").ok
  ? "ip (iproute2) is not installed (run .ci/setup-netns.sh)"
  : undefined;

/** Whether a suite needing namespaces is skipped: only outside CI. Warns once per suite with the reason. */
export function skipWithoutNetns(suite: string): boolean {
  const ignore = !!NETNS_MISSING && process.env.CI !== "true";
  if (NETNS_MISSING) console.warn(`${suite}: ${ignore ? "skipped" : "cannot run"}: ${NETNS_MISSING}`);
  return ignore;
}

/** One namespace: its name, its link's two ends, its address. */
export interface Side {
  ns: string;
  host: string;
  peer: string;
  ip: string;
}

/** Namespaces on a bridge; the bridge itself has {@linkcode Namespaces.rootIp} in this namespace. */
export interface Namespaces extends Disposable {
  sides: Side[];
  /** This (the root) namespace's address on the bridge: tools run here reach every side not cut. */
  rootIp: string;
  /** Takes side `i`'s link down: it reaches nobody, nobody reaches it. */
  cut(i: number): void;
  heal(i: number): void;
}

/** Creates `n` namespaces: `sides[i]` has address 10.77.0.(i+1), the bridge 10.77.0.254. */
export function createNamespaces(n: number): Namespaces {
  const tag = Math.random().toString(16).slice(2, 6);
  const bridge = `shb${tag}`;
  const sides = Array.from({ length: n }, (_, i) => ({
    ns: `shoal-${tag}-${i}`,
    host: `shv${tag}${i}`,
    peer: `shp${tag}${i}`,
    ip: `10.77.0.${i + 1}`,
  }));
  const must = (...args: string[]) => {
    const r = ip(...args);
    if (!r.ok) throw new Error(`ip ${args.join(" ")}: ${r.err}`);
  };
  const teardown = () => {
    for (const s of sides) {
      ip("netns", "del", s.ns);
      ip("link", "del", s.host);
    }
    ip("link", "del", bridge);
  };
  try {
    must("link", "add", bridge, "type", "bridge");
    must("addr", "add", "10.77.0.254/24", "dev", bridge);
    must("link", "set", bridge, "up");
    for (const s of sides) {
      must("netns", "add", s.ns);
      must("link", "add", s.host, "type", "veth", "peer", "name", s.peer);
      must("link", "set", s.peer, "netns", s.ns);
      must("link", "set", s.host, "master", bridge);
      must("link", "set", s.host, "up");
      must("-n", s.ns, "addr", "add", `${s.ip}/24`, "dev", s.peer);
      must("-n", s.ns, "link", "set", s.peer, "up");
      must("-n", s.ns, "link", "set", "lo", "up");
    }
  } catch (err) {
    teardown();
    throw err;
  }
  return {
    sides,
    rootIp: "10.77.0.254",
    cut: (i) => must("link", "set", sides[i]!.host, "down"),
    heal: (i) => must("link", "set", sides[i]!.host, "up"),
    [Symbol.dispose]: teardown,
  };
}

/** An agent running inside a namespace. */
export interface NsAgent {
  name: string;
  side: number;
  dataDir: string;
  id: string;
  addr: string;
  child: Deno.ChildProcess;
}

/** Starts `shoal agent` inside side `side`, listening on its address; resolves once it listens. */
export async function startNsAgent(
  net: Namespaces,
  side: number,
  init: { name: string; dir: string; swarmKeyFile: string; bootstrap?: string; args?: string[] },
): Promise<NsAgent> {
  const dataDir = join(init.dir, init.name);
  const s = net.sides[side]!;
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      s.ns,
      SHOAL_BIN,
      "agent",
      "--data-dir",
      dataDir,
      "--swarm-key",
      init.swarmKeyFile,
      "--listen",
      `/ip4/${s.ip}/tcp/0`,
      "--quiet",
      ...(init.bootstrap ? ["--bootstrap", init.bootstrap] : []),
      ...(init.args ?? []),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const state = await waitFor(async () => {
      const st = await readStateFile(dataDir);
      return st?.addrs.length ? st : undefined;
    }, { timeout: 30_000, what: `agent ${init.name} to listen` });
    return { name: init.name, side, dataDir, id: state.peerId, addr: state.addrs[0]!, child };
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* it exited by itself: its log says why */ }
    const status = await child.status;
    throw new Error(`agent ${init.name} did not start (exit ${status.code}); see ${dataDir}/agent.log`, {
      cause: err,
    });
  }
}

/** Stops agents: SIGTERM (their tasks stop with them), SIGKILL after 10 s. */
export async function stopNsAgents(agents: readonly { child: Deno.ChildProcess }[]): Promise<void> {
  await Promise.all(agents.map(async ({ child }) => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await child.status;
    clearTimeout(timer);
  }));
}

/** An agent's log text ("" before it exists). */
export function agentLog(dataDir: string): string {
  try {
    return readFileSync(join(dataDir, "agent.log"), "utf8");
  } catch {
    return "";
  }
}

/** Each agent's last membership event about every other peer, read from its log. */
export function lastStates(dataDir: string): Map<string, string> {
  const states = new Map<string, string>();
  for (const line of agentLog(dataDir).split("\n")) {
    const m = / INFO {2}agent:(joined|alive|suspect|dead|left) peer=(\S+)/.exec(line);
    if (m) states.set(m[2]!, m[1] === "joined" ? "alive" : m[1]!);
  }
  return states;
}

/** Each agent's last-logged view of the others, one line per agent, for a failed wait's message. */
export function views(agents: readonly NsAgent[]): string {
  const name = new Map(agents.map((a) => [a.id, a.name]));
  return agents.map((a) => {
    const seen = [...lastStates(a.dataDir)].map(([id, st]) => `${name.get(id) ?? id.slice(-6)}=${st}`);
    return `${a.name}: ${seen.join(" ")}`;
  }).join("\n");
}

/** True when every agent sees every other one as `state` (only those of other sides when `across`). */
export function allSee(agents: readonly NsAgent[], state: string, across = false): boolean {
  return agents.every((a) => {
    const states = lastStates(a.dataDir);
    return agents.every((b) => b === a || (across && b.side === a.side) || states.get(b.id) === state);
  });
}

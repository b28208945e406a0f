/**
 * A mesh cut in two by the network heals by itself: six agents in two network namespaces on one bridge,
 * the link of one namespace taken down until each half declares the other dead, then brought back up. The
 * views must become whole again without anyone's help (SWIM's reconnect to dead members, push-pull). Needs
 * root and `ip` (iproute2); `.ci/setup-netns.sh` provides it.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readStateFile } from "../agent/mod.ts";
import { createSwarmKey } from "../mesh/mod.ts";
import { SHOAL_BIN } from "./_harness.ts";
import { assert } from "./_assert.ts";
import { waitFor } from "./_wait.ts";

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  return { ok: r.status === 0, err: (r.stderr ?? r.error?.message ?? "").trim() };
}

const missing = process.getuid?.() !== 0
  ? "needs root for network namespaces"
  : !ip("-V").ok
  ? "ip (iproute2) is not installed (run .ci/setup-netns.sh)"
  : undefined;
const ignore = !!missing && process.env.CI !== "true";
if (missing) console.warn(`partition tests: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

/** Two namespaces on a bridge: `sides[i]` has address 10.77.0.(i+1); `cut(i)`/`heal(i)` its link. */
function twoNamespaces() {
  const tag = Math.random().toString(16).slice(2, 6);
  const bridge = `shb${tag}`;
  const sides = [0, 1].map((i) => ({
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
    cut: (i: number) => must("link", "set", sides[i]!.host, "down"),
    heal: (i: number) => must("link", "set", sides[i]!.host, "up"),
    [Symbol.dispose]: teardown,
  };
}

/** Each agent's last membership event about every other peer, read from its log. */
function lastStates(dataDir: string): Map<string, string> {
  const states = new Map<string, string>();
  let text = "";
  try {
    text = readFileSync(join(dataDir, "agent.log"), "utf8");
  } catch { /* not yet */ }
  for (const line of text.split("\n")) {
    const m = / INFO {2}agent:(joined|alive|suspect|dead|left) peer=(\S+)/.exec(line);
    if (m) states.set(m[2]!, m[1] === "joined" ? "alive" : m[1]!);
  }
  return states;
}

Deno.test({
  name: "partition: two halves cut apart declare each other dead, and after the heal the view is whole again",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    using net = twoNamespaces();
    const dir = mkdtempSync(join(tmpdir(), "shoal-partition-"));
    const key = join(dir, "swarm.key");
    writeFileSync(key, createSwarmKey());
    const children: Deno.ChildProcess[] = [];
    const start = async (side: number, name: string, bootstrap?: string) => {
      const dataDir = join(dir, name);
      const child = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          net.sides[side]!.ns,
          SHOAL_BIN,
          "agent",
          "--data-dir",
          dataDir,
          "--swarm-key",
          key,
          "--listen",
          `/ip4/${net.sides[side]!.ip}/tcp/0`,
          "--quiet",
          ...(bootstrap ? ["--bootstrap", bootstrap] : []),
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      children.push(child);
      const state = await waitFor(async () => {
        const s = await readStateFile(dataDir);
        return s?.addrs.length ? s : undefined;
      }, { timeout: 15_000, what: `agent ${name} to listen` });
      return { name, side, dataDir, id: state.peerId, addr: state.addrs[0]! };
    };
    try {
      const first = await start(0, "a0");
      const agents = [first];
      for (const [side, name] of [[0, "a1"], [0, "a2"], [1, "b0"], [1, "b1"], [1, "b2"]] as const) {
        agents.push(await start(side, name, first.addr));
      }
      const sees = (state: string, ofOtherSide: boolean) => () =>
        agents.every((a) => {
          const states = lastStates(a.dataDir);
          return agents.every((b) =>
            b === a || (ofOtherSide && b.side === a.side) || states.get(b.id) === state
          );
        });
      await waitFor(sees("alive", false), { timeout: 20_000, what: "all six to see each other alive" });

      net.cut(1);
      // Only timeouts, no refused connections: suspicion runs its long course (4 × log10 N s and more).
      await waitFor(sees("dead", true), { timeout: 60_000, what: "each half to see the other dead" });

      const healed = Date.now();
      net.heal(1);
      await waitFor(sees("alive", false), {
        timeout: 30_000,
        what: "the view to be whole again after the heal",
      });
      const ms = Date.now() - healed;
      console.log(`partition: view whole again ${ms} ms after the heal`);
      assert(ms < 30_000);
    } finally {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
        await c.status;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

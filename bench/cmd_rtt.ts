/**
 * Custom-command round trip: a tool (light peer) sends a command through an agent to one echo task (the
 * `shoal` helper: `shoal cmd recv --count 0 --reply pong`) and waits for its reply. Measured through the
 * agent that runs the task ("local": command and reply never leave that agent) and through the other
 * agent ("remote": one direct hop each way). Baseline in the same run: libp2p ping from the same light
 * peer to the same agents. Then throughput: as many commands as 256 in flight allow for 10 s through the
 * remote agent, against the same flood of `ping` commands to that agent itself (`agent:<peer>`, answered by
 * the agent: the mesh's part without the task's). Prints one JSON line, times in milliseconds.
 *
 * Run: `npx deno run -A bench/cmd_rtt.ts [rounds]` (after `deno task build`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { peerIdFromString } from "@libp2p/peer-id";
import type { Ping } from "@libp2p/ping";
import { CMD_PROTOCOL, CmdResponseSchema } from "../agent/mod.ts";
import { createMeshNode, readSwarmKey, request } from "../mesh/mod.ts";

const ROUNDS = Number(process.argv[2] ?? 300);
const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "shoal-bench-cmd-"));
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };

function shoal(args: string[]): string {
  const r = spawnSync(bin, args, { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(s.length * p))]! * 100) / 100;
}

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

try {
  shoal(["up", "--agents", "2", "--slots", "1"]);
  const topo = join(home, "echo.xml");
  writeFileSync(
    topo,
    `<topology name="echo"><decltask name="echo"><exe reachable="true">${bin} cmd recv --count 0 --reply pong</exe>` +
      `</decltask><main name="main"><task>echo</task></main></topology>`,
  );
  shoal(["topology", "activate", topo]);
  const tasks = (JSON.parse(shoal(["ps", "--json"])) as { tasks: { agent: string }[] }).tasks;
  const session = JSON.parse(readFileSync(join(home, "sessions", "bench", "session.json"), "utf8")) as {
    jobs: { peerId: string; addrs: string[] }[];
  };
  const local = session.jobs.find((j) => j.peerId === tasks[0]!.agent)!;
  const remote = session.jobs.find((j) => j.peerId !== tasks[0]!.agent)!;
  const probe = await createMeshNode({
    swarmKey: await readSwarmKey(join(home, "sessions", "bench", "swarm.key")),
  });
  await probe.dial(local.addrs[0]!);
  await probe.dial(remote.addrs[0]!);
  const payload = new TextEncoder().encode("ping");
  const cmd = (via: string) => async () => {
    const r = await request(probe, via, CMD_PROTOCOL, {
      topologyId: "echo",
      condition: "",
      payload,
      waitReplies: 1,
      timeoutMs: 5_000,
    }, { schema: CmdResponseSchema });
    if (r.replies.length !== 1) throw new Error("no reply");
  };
  // The node is built with the ping service; its type only names gossipsub.
  const pinger = (probe.libp2p.services as unknown as { ping: Ping }).ping;
  // libp2p allows one outbound ping stream per connection, and its connection monitor pings too: retry then.
  const ping = (peer: string) => async () => {
    for (let i = 0;; i++) {
      try {
        return await pinger.ping(peerIdFromString(peer));
      } catch (err) {
        if (i > 10 || (err as Error).name !== "TooManyOutboundProtocolStreamsError") throw err;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  };
  const cmdLocal = await time(cmd(local.peerId));
  const cmdRemote = await time(cmd(remote.peerId));
  const pingLocal = await time(ping(local.peerId));
  const pingRemote = await time(ping(remote.peerId));
  const flood = async (send: () => Promise<void>) => {
    const until = performance.now() + 10_000;
    let done = 0;
    await Promise.all(Array.from({ length: 256 }, async () => {
      while (performance.now() < until) {
        await send();
        done++;
      }
    }));
    return Math.round(done / 10);
  };
  const toAgent = async () => {
    const r = await request(probe, remote.peerId, CMD_PROTOCOL, {
      topologyId: "",
      condition: `agent:${remote.peerId}`,
      payload,
      waitReplies: 1,
      timeoutMs: 5_000,
    }, { schema: CmdResponseSchema });
    if (r.replies.length !== 1) throw new Error("no reply");
  };
  const cmdPerS = await flood(cmd(remote.peerId));
  const agentPingPerS = await flood(toAgent);
  await probe.stop();
  const sum = (xs: number[]) => ({ p50: pct(xs, 0.5), p99: pct(xs, 0.99) });
  console.log(JSON.stringify({
    bench: "cmd_rtt",
    rounds: ROUNDS,
    cmdLocalMs: sum(cmdLocal),
    cmdRemoteMs: sum(cmdRemote),
    baseline: "libp2p ping from the same light peer to the same agent",
    pingLocalMs: sum(pingLocal),
    pingRemoteMs: sum(pingRemote),
    ratioLocalP50: Math.round(pct(cmdLocal, 0.5) / pct(pingLocal, 0.5) * 10) / 10,
    ratioRemoteP50: Math.round(pct(cmdRemote, 0.5) / pct(pingRemote, 0.5) * 10) / 10,
    cmdRemotePerS: cmdPerS,
    throughputBaseline: "ping commands to the remote agent itself, 256 in flight",
    agentPingPerS,
    ratioThroughput: Math.round(cmdPerS / agentPingPerS * 100) / 100,
  }));
} finally {
  spawnSync(bin, ["down", "--grace", "2"], { env });
  rmSync(home, { recursive: true, force: true });
}
process.exit(0);

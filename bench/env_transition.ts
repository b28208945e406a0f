/**
 * Environment transitions of N `direct` tasks (default 1,000) over 4 local agents: CONFIGURE and
 * START_ACTIVITY, timed as a whole and per task (p50, p99 of each task's answer, from the send), against a
 * baseline in the same run — a custom command to the same N tasks gathering N replies. Both are sent from
 * this process as a light peer, so neither includes a CLI's start-up. The tasks are bash loops speaking
 * the task API over its loopback port with `/dev/tcp` (a compiled `shoal` helper costs ≈ 40 MB a process,
 * and N of them would not fit; a `curl` per answer costs a process each). Prints one JSON line (medians of
 * the runs).
 *
 * Run: `npx deno task bench env_transition` or `npx deno run -A bench/env_transition.ts [tasks] [runs]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CMD_PROTOCOL, CmdResponseSchema } from "../agent/mod.ts";
import { connectCommander } from "../cli/commander.ts";
import { openSession } from "../cli/session.ts";
import { controlEnvironment, createEnvironment, destroyEnvironment } from "../env/mod.ts";
import { request } from "../mesh/mod.ts";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const N = Number(process.argv[2] ?? 1000);
const RUNS = Number(process.argv[3] ?? 3);
const AGENTS = 4;
const home = mkdtempSync(join(tmpdir(), "shoal-bench-env-"));
process.env.SHOAL_HOME = home;
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };

function shoal(args: string[]): string {
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/**
 * The tasks speak the task API with bash alone, over `SHOAL_API_PORT` (`/dev/tcp`): the stream of commands or
 * transitions on one connection, each answer on a new one, the time from `$EPOCHREALTIME` — no process per
 * answer (a `curl` and a `date` per answer cost ≈ 5 ms of CPU each, 1,000 of them several seconds here).
 */
const prelude = `#!/bin/bash
# listen PATH: a GET whose NDJSON body is read from fd 3, headers skipped
listen() {
  exec 3<>"/dev/tcp/127.0.0.1/$SHOAL_API_PORT"
  printf 'GET %s HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n' "$1" "$SHOAL_TASK_TOKEN" >&3
  while IFS= read -r h <&3 && [ "$h" != $'\\r' ]; do :; done
}
# post PATH BODY: one request on a connection of its own; fails unless the answer is 200
post() {
  exec 4<>"/dev/tcp/127.0.0.1/$SHOAL_API_PORT"
  printf 'POST %s HTTP/1.1\\r\\nHost: t\\r\\nAuthorization: Bearer %s\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s' \\
    "$1" "$SHOAL_TASK_TOKEN" "\${#2}" "$2" >&4
  IFS= read -r status <&4
  exec 4<&-
  [[ $status == *" 200 "* ]]
}
`;
/** Answers every custom command with the time (ms) it answered. */
const cmdTask = join(home, "cmd-task.sh");
writeFileSync(
  cmdTask,
  `${prelude}listen /v1/cmd
while IFS= read -r line <&3; do
  id=\${line#*\\"id\\":\\"}; id=\${id%%\\"*}
  t=\${EPOCHREALTIME/./}; post "/v1/cmd/$id/reply" "\${t:0:13}"
done
`,
);
/** Answers every transition ok, with the time (ms) it answered, as the baseline's tasks do. */
const envTask = join(home, "env-task.sh");
writeFileSync(
  envTask,
  `${prelude}listen /v1/env/transitions
while IFS= read -r line <&3; do
  id=\${line#*\\"id\\":\\"}; id=\${id%%\\"*}
  t=\${EPOCHREALTIME/./}; post "/v1/env/transitions/$id" "{\\"ok\\":true,\\"at\\":\${t:0:13}}"
done
`,
);
chmodSync(cmdTask, 0o755);
chmodSync(envTask, 0o755);
const topo = (name: string, exe: string) => {
  const file = join(home, `${name}.xml`);
  writeFileSync(
    file,
    `<topology name="${name}">
  <decltask name="T"><exe reachable="true">${exe}</exe></decltask>
  <main name="main"><group name="g" n="${N}"><task>T</task></group></main>
</topology>`,
  );
  return file;
};
const cmdTopo = topo("benchcmd", cmdTask);
const envTopo = topo("benchenv", envTask);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN);
}
function median(xs: number[]): number {
  return pct(xs, 0.5);
}

const out: Record<string, unknown> = { scenario: "env_transition", tasks: N, agents: AGENTS, runs: RUNS };
shoal(["up", "--agents", String(AGENTS), "--slots", String(Math.ceil(N / AGENTS))]);
try {
  const session = await openSession("bench");
  await using c = await connectCommander(session);
  const init = { ...c.init, by: "bench" };
  // Leases go straight to each agent: be connected to all of them (the light peer dials them all, but under
  // load some of those dials time out).
  for (const a of await session.bootstrapAddrs()) {
    for (let i = 0; i < 5; i++) {
      const ok = await c.peer.node.dial(a, { signal: AbortSignal.timeout(10_000) }).then(
        () => true,
        () => false,
      );
      if (ok) break;
    }
  }
  // Baseline: a custom command to the N tasks, N replies.
  shoal(["topology", "activate", cmdTopo]);
  const base = { total: [] as number[], p50: [] as number[], p99: [] as number[] };
  for (let i = 0; i <= RUNS; i++) {
    const t0 = Date.now();
    const res = await request(c.peer.node, c.init.via, CMD_PROTOCOL, {
      topologyId: "benchcmd",
      condition: "",
      payload: new TextEncoder().encode("go"),
      waitReplies: N,
      timeoutMs: 60_000,
    }, { schema: CmdResponseSchema, maxBytes: 64 * 1024 * 1024, timeoutMs: 90_000 });
    const total = Date.now() - t0;
    if (res.replies.length !== N) throw new Error(`baseline: ${res.replies.length} of ${N} replies`);
    const per = res.replies.map((r) => Number(new TextDecoder().decode(r.payload)) - t0);
    if (i === 0) continue; // the first round warms the tasks' connections up
    base.total.push(total);
    base.p50.push(pct(per, 0.5));
    base.p99.push(pct(per, 0.99));
  }
  shoal(["topology", "stop", "--id", "benchcmd", "--grace", "1"]);
  // The agents announce their freed slots by gossip: wait until the view has them all.
  for (let i = 0; i < 200; i++) {
    const agents =
      (JSON.parse(shoal(["info", "--json"])) as { agents: { slots: { free: number } }[] }).agents;
    if (agents.reduce((s, a) => s + a.slots.free, 0) >= N) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Environments: CONFIGURE and START_ACTIVITY, then back (STOP_ACTIVITY, RESET), RUNS times.
  const { readFileSync } = await import("node:fs");
  await createEnvironment(init, {
    topologyFile: envTopo,
    vars: {},
    control: { rules: [{ tasks: ".*", mode: "direct", critical: true }], timeoutsMs: { default: 60_000 } },
    topology: { file: envTopo, source: readFileSync(envTopo, "utf8"), vars: {} },
  });
  const ev: Record<string, { total: number[]; p50: number[]; p99: number[] }> = {};
  const one = async (event: string, keep: boolean) => {
    const t0 = Date.now();
    const r = await controlEnvironment(init, "benchenv", event);
    const total = Date.now() - t0;
    const per = r.answers.map((a) => a.ms ?? NaN);
    if (r.answers.some((a) => !a.ok)) {
      throw new Error(`${event}: ${r.answers.filter((a) => !a.ok).length} failed`);
    }
    if (!keep) return;
    const e = ev[event] ??= { total: [], p50: [], p99: [] };
    e.total.push(total);
    e.p50.push(pct(per, 0.5));
    e.p99.push(pct(per, 0.99));
  };
  for (let i = 0; i <= RUNS; i++) {
    await one("CONFIGURE", i > 0);
    await one("START_ACTIVITY", i > 0);
    await one("STOP_ACTIVITY", false);
    await one("RESET", false);
  }
  await destroyEnvironment(init, "benchenv", { force: true });
  const b = { totalMs: median(base.total), p50Ms: median(base.p50), p99Ms: median(base.p99) };
  out.baseline = { what: "custom command to the same tasks, N replies", ...b };
  for (const [event, e] of Object.entries(ev)) {
    const s = { totalMs: median(e.total), p50Ms: median(e.p50), p99Ms: median(e.p99) };
    out[event] = { ...s, ratio: Math.round((s.totalMs / b.totalMs) * 100) / 100 };
  }
} finally {
  spawnSync(bin, ["down", "--purge"], { env, encoding: "utf8" });
  rmSync(home, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
process.exit(0);

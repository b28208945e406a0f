/**
 * Real work on a large mesh: `shoal up --agents N --slots S`, then one topology of N × S tasks — N × (S − 1)
 * `sleep`s and N bash tasks that each put one value of one property and wait until they read all N (the
 * key-values of N writers read by all), then answer a custom command sent to every task with the number of
 * values they read. Measured: `up`, `topology activate` (until every task runs), the key-value exchange
 * and the command's N replies (from the send), `topology stop`, and the `sleep` processes left after it
 * (must be 0). The baseline in the same run is the same machine's floor for the spawn: `S` `sleep`s
 * started and killed by one bash per agent… no: one loop of N × S `sleep &` in one bash (what `activate`
 * costs above spawning the processes). Prints one JSON line.
 *
 * The tasks speak the task API with bash alone over `SHOAL_API_PORT` (`/dev/tcp`): N compiled `shoal`
 * helpers would cost ≈ 40 MB each.
 *
 * Run: `npx deno run -A bench/mesh_work.ts [--agents 100] [--slots 100]` (after `deno task build`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const N = flag("--agents", 100);
const S = flag("--slots", 100);
const TASKS = N * S;
const home = mkdtempSync(join(tmpdir(), "shoal-bench-work-"));
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "work", NO_COLOR: "1" };

function shoal(argv: string[], timeoutMs = 600_000): { out: string; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(bin, argv, { env, encoding: "utf8", maxBuffer: 256 << 20, timeout: timeoutMs });
  const ms = Math.round(performance.now() - t0);
  if (r.status !== 0) {
    throw new Error(
      `shoal ${argv.join(" ")} failed (${r.status ?? r.signal}) after ${ms} ms: ${r.stderr.slice(-600)}`,
    );
  }
  return { out: r.stdout, ms };
}

/** `sleep` processes whose command line is this bench's (its argument is unique to the run). */
function sleepsLeft(tag: string): number {
  const r = spawnSync("pgrep", ["-fc", `^sleep ${tag}$`], { encoding: "utf8" });
  return Number(r.stdout.trim() || 0);
}

// A sleep argument unique to this run, so that the count of leftovers sees only ours.
const tag = String(3000 + Math.floor(Math.random() * 600));
const kvTask = join(home, "kv-task.sh");
writeFileSync(
  kvTask,
  `#!/bin/bash
req() { # METHOD PATH BODY → the response body on stdout; fails unless 200
  exec 4<>"/dev/tcp/127.0.0.1/$SHOAL_API_PORT"
  printf '%s %s HTTP/1.1\\r\\nHost: t\\r\\nAuthorization: Bearer %s\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s' \\
    "$1" "$2" "$SHOAL_TASK_TOKEN" "\${#3}" "$3" >&4
  IFS= read -r status <&4
  while IFS= read -r h <&4 && [ "$h" != $'\\r' ]; do :; done
  cat <&4; exec 4<&-
  [[ $status == *" 200 "* ]]
}
req PUT /v1/kv/prop "$SHOAL_TASK_ID" >/dev/null || exit 2
body=$(req GET "/v1/kv/prop?waitCount=${N}&timeout=600000" "") || exit 3
n=$(grep -o '"sender"' <<<"$body" | wc -l)
exec 3<>"/dev/tcp/127.0.0.1/$SHOAL_API_PORT"
printf 'GET /v1/cmd HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n' "$SHOAL_TASK_TOKEN" >&3
while IFS= read -r h <&3 && [ "$h" != $'\\r' ]; do :; done
echo "kv read $n; listening"
while IFS= read -r line <&3; do
  id=\${line#*\\"id\\":\\"}; id=\${id%%\\"*}
  req POST "/v1/cmd/$id/reply" "$n" >/dev/null
done
`,
);
chmodSync(kvTask, 0o755);
const topo = join(home, "work.xml");
writeFileSync(
  topo,
  `<topology name="work">
  <property name="prop"/>
  <decltask name="Sleep"><exe reachable="true">sleep ${tag}</exe></decltask>
  <decltask name="Kv"><exe reachable="true">${kvTask}</exe><properties><name access="readwrite">prop</name></properties></decltask>
  <main name="main">
    <group name="s" n="${TASKS - N}"><task>Sleep</task></group>
    <group name="k" n="${N}"><task>Kv</task></group>
  </main>
</topology>`,
);

// Baseline: the same number of sleeps spawned and killed by one bash, no mesh.
const b0 = performance.now();
spawnSync("bash", ["-c", `for i in $(seq ${TASKS}); do sleep ${tag} & done; kill $(jobs -p); wait`], {
  stdio: "ignore",
});
const baselineMs = Math.round(performance.now() - b0);

const result: Record<string, unknown> = {
  scenario: "mesh_work",
  agents: N,
  slots: S,
  tasks: TASKS,
  baselineMs,
};
try {
  result.upMs = shoal(["up", "--agents", String(N), "--slots", String(S), "--timeout", "300"]).ms;
  const activated = shoal(["topology", "activate", topo, "--json"]);
  result.activateMs = activated.ms;
  result.activateRatio = Math.round(activated.ms / baselineMs * 100) / 100;
  result.started = JSON.parse(activated.out).started;
  const ps = JSON.parse(shoal(["ps", "--id", "work", "--json"]).out).tasks as { state: string }[];
  result.running = ps.filter((t) => t.state === "running").length;
  result.sleepsRunning = sleepsLeft(tag);
  // The command to every task; the N listening ones answer with the number of values they read.
  const t0 = performance.now();
  const sent = shoal([
    "cmd",
    "send",
    "count",
    "--id",
    "work",
    "--wait-replies",
    String(N),
    "--timeout",
    "600",
    "--json",
  ]);
  result.cmdMs = Math.round(performance.now() - t0);
  const replies = JSON.parse(sent.out).replies as { text: string }[];
  result.replies = replies.length;
  result.kvAllRead = replies.length === N && replies.every((r) => Number(r.text) === N);
  result.stopMs = shoal(["topology", "stop", "--id", "work"]).ms;
  result.sleepsLeft = sleepsLeft(tag);
} catch (err) {
  result.error = (err as Error).message;
} finally {
  try {
    shoal(["down", "--grace", "10"]);
  } catch (err) {
    result.downError = (err as Error).message;
  }
  result.sleepsLeftAfterDown = sleepsLeft(tag);
  rmSync(home, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
if (result.error) process.exitCode = 1;

/**
 * `deno task bench`: runs every benchmark scenario one after another; each prints one JSON line.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
/** Scenarios that measure code as it runs inside the binary run under the runtime that built it. */
const IN_BINARY_RUNTIME = new Set(["spawn_runner.ts", "topology_scale.ts"]);
const builder = (() => {
  try {
    return readFileSync(`${here}../dist/shoal.builder`, "utf8").trim();
  } catch {
    return "deno";
  }
})();
const SCENARIOS = [
  "agent_start.ts",
  "topology_scale.ts",
  "spawn_runner.ts",
  "deploy.ts",
  "kv_all_to_all.ts",
  "cmd_rtt.ts",
  "env_transition.ts",
  "collectives.ts",
  "pool.ts",
  "mesh_sim.ts",
  "mesh_scale.ts",
  "ui_tasks.ts",
  "stage.ts",
  "rms_sge.ts",
];
const only = process.argv.slice(2);
let failed = 0;
for (const file of SCENARIOS) {
  if (only.length && !only.some((o) => file.startsWith(o))) continue;
  if (!existsSync(here + file)) continue;
  const [cmd, args] = IN_BINARY_RUNTIME.has(file) && builder === "bun"
    ? [`${here}../node_modules/.bin/bun`, ["run", here + file]]
    : [process.execPath, ["run", "-A", "--v8-flags=--expose-gc", here + file]];
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) {
    failed++;
    console.error(`bench: ${file} failed with exit code ${r.status}`);
  }
}
process.exit(failed ? 1 : 0);

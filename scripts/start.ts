/**
 * `deno task start`, the main job: a local mesh on this machine, end to end. Starts a session of agents
 * with the built binary, shows them, watches the mesh for a moment, and stops everything.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const session = process.env.SHOAL_SESSION ?? "demo";
const env = { ...process.env, SHOAL_SESSION: session };

function shoal(args: string[]): void {
  console.log(`\n$ shoal ${args.join(" ")}`);
  const r = spawnSync(bin, args, { stdio: "inherit", env });
  if (r.status !== 0) {
    console.error(`shoal ${args[0]} failed with exit code ${r.status}`);
    spawnSync(bin, ["down", "--grace", "2"], { stdio: "inherit", env });
    process.exit(r.status ?? 1);
  }
}

shoal(["up", "--agents", "3", "--slots", "2"]);
shoal(["info"]);
console.log("\n$ shoal monitor --timeout 3");
await new Promise<void>((resolve) => {
  const m = spawn(bin, ["monitor", "--timeout", "3"], { stdio: "inherit", env });
  m.on("exit", () => resolve());
});
shoal(["down"]);

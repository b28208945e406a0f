/**
 * `deno task start`, the main job: the built binary runs its embedded sample topology on a local mesh of
 * agents on this machine (`shoal demo`), and cleans up.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const r = spawnSync(bin, ["demo", ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(r.status ?? 1);

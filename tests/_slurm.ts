/**
 * The one-node Slurm cluster for the slurm plug-in's tests: started by `.ci/setup-slurm.sh` (CI runs it
 * with installs; tests run it with `--no-install` when the daemons are not up yet).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const SETUP = fileURLToPath(new URL("../.ci/setup-slurm.sh", import.meta.url));

/** Why the Slurm tests cannot run here, or undefined when they can. */
export function slurmMissing(): string | undefined {
  for (
    const bin of [
      "/usr/bin/sbatch",
      "/usr/bin/squeue",
      "/usr/bin/scancel",
      "/usr/sbin/slurmctld",
      "/usr/sbin/slurmd",
    ]
  ) {
    if (!existsSync(bin)) return `${bin} is not installed (run .ci/setup-slurm.sh)`;
  }
  return undefined;
}

/** Makes sure munge, slurmctld and slurmd run and the node is idle. */
export async function ensureSlurm(): Promise<void> {
  const probe = await new Deno.Command("sinfo", {
    args: ["-h", "-N", "-o", "%T"],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  // A node between jobs is "completing" (or planned, reserved): healthy. Only a down, drained or missing one
  // is set up again (the set-up waits for an idle node, and restarts the daemons if their config changed).
  if (
    probe.success && /idle|mix|alloc|complet|plan|resv|reserv/.test(new TextDecoder().decode(probe.stdout))
  ) {
    return;
  }
  const r = await new Deno.Command("bash", {
    args: [SETUP, "--no-install"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!r.success) {
    throw new Error(
      `${SETUP} failed:\n${new TextDecoder().decode(r.stdout)}${new TextDecoder().decode(r.stderr)}`,
    );
  }
}

/** Job IDs in the queue. */
export async function queuedJobs(): Promise<string[]> {
  const r = await new Deno.Command("squeue", { args: ["-h", "-o", "%i"], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(r.stdout).split("\n").map((l) => l.trim()).filter(Boolean);
}

/** Cancels a job (cleanup after a failed test; a job already gone is fine). */
export async function scancel(jobId: string): Promise<void> {
  await new Deno.Command("scancel", { args: [jobId], stdout: "null", stderr: "null" }).output();
}

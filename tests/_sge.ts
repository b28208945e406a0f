/**
 * The one-host Grid Engine for the sge plug-in's tests: set up by `.ci/setup-sge.sh` (CI runs it with
 * installs; tests run it with `--no-install` when the daemons are not up yet).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const SETUP = fileURLToPath(new URL("../.ci/setup-sge.sh", import.meta.url));

/** Why the SGE tests cannot run here, or undefined when they can. */
export function sgeMissing(): string | undefined {
  for (
    const bin of [
      "/usr/bin/qsub",
      "/usr/bin/qstat",
      "/usr/bin/qdel",
      "/usr/sbin/sge_qmaster",
      "/usr/sbin/sge_execd",
    ]
  ) {
    if (!existsSync(bin)) return `${bin} is not installed (run .ci/setup-sge.sh)`;
  }
  return undefined;
}

async function output(cmd: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  return { ok: r.success, stdout: text.decode(r.stdout), stderr: text.decode(r.stderr) };
}

/** Makes sure sge_qmaster and sge_execd run and queue `shoal.q` takes jobs. */
export async function ensureSge(): Promise<void> {
  const r = await output("bash", [SETUP, "--no-install"]);
  if (!r.ok) throw new Error(`${SETUP} failed:\n${r.stdout}${r.stderr}`);
}

/** Job IDs in the queue (any user). */
export async function queuedJobs(): Promise<string[]> {
  const r = await output("qstat", ["-u", "*"]);
  return [
    ...new Set(
      r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((f) => /^\d+$/.test(f)),
    ),
  ];
}

/** Deletes a job (cleanup after a failed test; a job already gone is fine). */
export async function qdel(jobId: string): Promise<void> {
  await output("qdel", ["-f", jobId]);
}

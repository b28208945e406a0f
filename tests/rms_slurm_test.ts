/**
 * The slurm plug-in against a real one-node Slurm cluster (slurmctld, slurmd and munge on this machine):
 * the shared contract, `shoal submit --rms slurm`, a missing sbatch, a job that never starts.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentFailure } from "../rms/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ps, sleepers, startMesh, writeTopology } from "./_harness.ts";
import { ensureSlurm, queuedJobs, scancel, slurmMissing } from "./_slurm.ts";
import { waitFor } from "./_wait.ts";
import { rmsContract } from "./rms_contract.ts";

const missing = slurmMissing();
const ignore = !!missing && !process.env.CI;
if (missing) console.warn(`rms slurm tests: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

const LOOPBACK = "/ip4/127.0.0.1/tcp/0";

rmsContract("slurm", async () => {
  await ensureSlurm();
  return {
    // One node here: two agents on it.
    count: 2,
    config: (dir) => ({ listen: LOOPBACK, workDir: join(dir, "node"), agentsPerNode: 2 }),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}, { ignore });

interface SubmitJson {
  started: number;
  slots: number;
  elapsedMs: number;
  agents: { job: string; host: string; id: string }[];
  failures: AgentFailure[];
  error?: string;
}

Deno.test({
  name:
    "slurm: `shoal submit --rms slurm -n 1 --slots 8` adds an agent to the mesh; info lists it; down scancels",
  ignore,
  fn: async () => {
    await ensureSlurm();
    await using mesh = await startMesh({ agents: 1 });
    const cfg = join(mesh.home.dir, "slurm.json");
    writeFileSync(
      cfg,
      JSON.stringify({ listen: LOOPBACK, workDir: join(mesh.home.dir, "node"), time: "10:00" }),
    );
    const sub = await mesh.run(["submit", "--rms", "slurm", "-n", "1", "--slots", "8", "-c", cfg, "--json"], {
      timeoutMs: 90_000,
    });
    assertEquals(sub.code, 0, sub.stderr);
    const out = JSON.parse(sub.stdout) as SubmitJson;
    console.log(`slurm submit of 1 agent: ${out.elapsedMs} ms to joined`);
    assertEquals(out.started, 1);
    assertEquals(out.slots, 8);
    const jobId = out.agents[0]!.job.split(":")[0]!;
    await using _cleanup = { [Symbol.asyncDispose]: () => scancel(jobId) };
    assert((await queuedJobs()).includes(jobId), `job ${jobId} is in the queue`);

    const info = await mesh.run(["info", "--json"]);
    assertEquals(info.code, 0, info.stderr);
    const agents =
      (JSON.parse(info.stdout) as { agents: { id: string; state: string; slots: { total: number } }[] })
        .agents;
    const slurmAgent = agents.find((a) => a.id === out.agents[0]!.id);
    assertEquals(slurmAgent?.state, "alive");
    assertEquals(slurmAgent?.slots.total, 8);

    // A topology that needs every slot runs across the local agent and the Slurm one.
    const topo = writeTopology(mesh.home.dir, "across.xml", sleepers("Across", 9));
    const act = await mesh.run(["topology", "activate", topo]);
    assertEquals(act.code, 0, act.stderr);
    const tasks = await ps(mesh);
    assertEquals(tasks.filter((t) => t.state === "running").length, 9);
    assertEquals(tasks.filter((t) => t.agent === out.agents[0]!.id).length, 8);
    assertEquals((await mesh.run(["topology", "stop"])).code, 0);

    const down = await mesh.run(["down", "--grace", "8", "--json"]);
    assertEquals(down.code, 0, down.stderr);
    assertEquals((JSON.parse(down.stdout) as { terminated: number }).terminated, 2);
    assert(!(await queuedJobs()).includes(jobId), `job ${jobId} left the queue`);
  },
});

Deno.test({
  name: "slurm: a missing sbatch is reported with the tool's name and exit code 1",
  ignore,
  fn: async () => {
    await using mesh = await startMesh({ agents: 1 });
    const cfg = join(mesh.home.dir, "slurm.json");
    writeFileSync(cfg, JSON.stringify({ slurmBin: join(mesh.home.dir, "no-slurm-here") }));
    const sub = await mesh.run(["submit", "--rms", "slurm", "-c", cfg]);
    assertEquals(sub.code, 1, sub.stderr);
    assertStringIncludes(sub.stderr, "sbatch");
    assertStringIncludes(sub.stderr, "is not installed");
  },
});

Deno.test({
  name:
    "slurm: a job that never starts is reported with its ID and reason within the deadline, and cancelled",
  ignore,
  fn: async () => {
    await ensureSlurm();
    await using mesh = await startMesh({ agents: 1 });
    const cfg = join(mesh.home.dir, "slurm.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        listen: LOOPBACK,
        workDir: join(mesh.home.dir, "node"),
        sbatchArgs: ["--hold"],
        queueTimeout: 3,
      }),
    );
    const began = Date.now();
    const sub = await mesh.run(["submit", "--rms", "slurm", "-c", cfg, "--json"], { timeoutMs: 60_000 });
    assertEquals(sub.code, 1, sub.stderr);
    assert(Date.now() - began < 20_000, `reported within the deadline (${Date.now() - began} ms)`);
    const out = JSON.parse(sub.stdout) as SubmitJson;
    assertEquals(out.started, 0);
    const f = out.failures[0]!;
    assert(f.job && /^\d+$/.test(f.job), `the failure names the job: ${JSON.stringify(f)}`);
    assertStringIncludes(f.reason, "did not start within 3 s");
    assertStringIncludes(f.reason, "JobHeldUser");
    await waitFor(async () => !(await queuedJobs()).includes(f.job!), {
      timeout: 10_000,
      what: "the held job to go",
    });
  },
});

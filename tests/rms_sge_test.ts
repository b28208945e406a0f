/**
 * The sge plug-in against a real one-host Son of Grid Engine (sge_qmaster and sge_execd on this machine,
 * `.ci/setup-sge.sh`): the shared contract as an array job and as a parallel-environment job,
 * `shoal submit --rms sge` with a pilot chosen for the queue, a missing qsub, a job that never starts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentFailure } from "../rms/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ps, sleepers, startMesh, writeTopology } from "./_harness.ts";
import { ensureSge, qdel, queuedJobs, sgeMissing } from "./_sge.ts";
import { waitFor } from "./_wait.ts";
import { rmsContract } from "./rms_contract.ts";

const missing = sgeMissing();
const ignore = !!missing && !process.env.CI;
if (missing) console.warn(`rms sge tests: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

const LOOPBACK = "/ip4/127.0.0.1/tcp/0";

rmsContract("sge", async () => {
  await ensureSge();
  return {
    count: 2,
    config: (dir) => ({ listen: LOOPBACK, workDir: join(dir, "node"), queue: "shoal.q" }),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}, { ignore, variant: "array job" });

rmsContract("sge", async () => {
  await ensureSge();
  return {
    count: 2,
    config: (dir) => ({ listen: LOOPBACK, workDir: join(dir, "node"), parallelEnvironment: "shoal" }),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}, { ignore, variant: "parallel environment" });

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
    "sge: `shoal submit --rms sge -n 2` runs the queue's pilot (a site step inserted) and adds agents; down qdels",
  ignore,
  fn: async () => {
    await ensureSge();
    await using mesh = await startMesh({ agents: 1 });
    const dir = mesh.home.dir;
    const node = join(dir, "node");
    // The pilots file gives queue shoal.q a site step from the step directory; the plug-in's own list
    // does the rest.
    mkdirSync(join(dir, "site-steps"));
    writeFileSync(
      join(dir, "site-steps", "scratch.sh"),
      'mkdir -p "$SHOAL_WORK_DIR/scratch" && echo "$SHOAL_AGENT_NAME on $HOSTNAME" >>"$SHOAL_WORK_DIR/scratch/who"\n',
    );
    writeFileSync(
      join(dir, "pilots.yaml"),
      "stepDirs: [site-steps]\nresources:\n  sge:shoal.q: { insert: [{ name: scratch, after: check-env }] }\n",
    );
    const cfg = join(dir, "sge.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        listen: LOOPBACK,
        workDir: node,
        queue: "shoal.q",
        pilots: "pilots.yaml",
        time: "0:10:0",
      }),
    );
    const sub = await mesh.run(["submit", "--rms", "sge", "-n", "2", "--slots", "4", "-c", cfg, "--json"], {
      timeoutMs: 90_000,
    });
    assertEquals(sub.code, 0, sub.stderr);
    const out = JSON.parse(sub.stdout) as SubmitJson;
    console.log(`sge submit of 2 agents: ${out.elapsedMs} ms to joined`);
    assertEquals(out.started, 2);
    assertEquals(out.slots, 8);
    const jobId = out.agents[0]!.job.split(".")[0]!;
    await using _cleanup = { [Symbol.asyncDispose]: () => qdel(jobId) };
    assertEquals(out.agents.map((a) => a.job).sort(), [`${jobId}.1`, `${jobId}.2`]);
    assert((await queuedJobs()).includes(jobId), `job ${jobId} is in the queue`);

    // The site step ran in each pilot, after check-env, under the name Grid Engine's task gave it.
    const who = readFileSync(join(node, "scratch", "who"), "utf8").trim().split("\n").sort();
    assertEquals(who.map((l) => l.split(" ")[0]), [`sge-${jobId}-1`, `sge-${jobId}-2`]);
    const sgeDir = join(dir, "sessions", "default", "sge");
    const [run] = readdirSync(sgeDir);
    const steps = readFileSync(join(sgeDir, run!, `pilot-${jobId}-1.out`), "utf8").split("\n")
      .filter((l) => l.startsWith("@@shoal:step ")).map((l) => l.slice(13));
    assertEquals(steps, [
      "check-env",
      "scratch",
      "stage-binary",
      "write-config",
      "start-agent",
      "report",
      "wait-agent",
    ]);

    // A topology that needs every slot runs across the local agent and the Grid Engine ones.
    const topo = writeTopology(dir, "across.xml", sleepers("Across", 9));
    const act = await mesh.run(["topology", "activate", topo]);
    assertEquals(act.code, 0, act.stderr);
    const tasks = await ps(mesh);
    assertEquals(tasks.filter((t) => t.state === "running").length, 9);
    const sgeAgents = new Set(out.agents.map((a) => a.id));
    assertEquals(tasks.filter((t) => sgeAgents.has(t.agent)).length, 8);
    assertEquals((await mesh.run(["topology", "stop"])).code, 0);

    const down = await mesh.run(["down", "--grace", "8", "--json"]);
    assertEquals(down.code, 0, down.stderr);
    assertEquals((JSON.parse(down.stdout) as { terminated: number }).terminated, 3);
    assert(!(await queuedJobs()).includes(jobId), `job ${jobId} left the queue`);
    // qdel's SIGUSR2 (-notify) reached the pilots, which stopped their agents before Grid Engine's SIGKILL.
    for (const t of [1, 2]) {
      const log = readFileSync(join(node, "sessions", "default", `sge-${jobId}-${t}`, "agent.log"), "utf8");
      assertStringIncludes(log, "agent stopped", `agent of task ${t} stopped cleanly`);
    }
  },
});

Deno.test({
  name: "sge: a missing qsub is reported with the tool's name and exit code 1",
  ignore,
  fn: async () => {
    await using mesh = await startMesh({ agents: 1 });
    const cfg = join(mesh.home.dir, "sge.json");
    writeFileSync(cfg, JSON.stringify({ sgeBin: join(mesh.home.dir, "no-sge-here") }));
    const sub = await mesh.run(["submit", "--rms", "sge", "-c", cfg]);
    assertEquals(sub.code, 1, sub.stderr);
    assertStringIncludes(sub.stderr, "qsub");
    assertStringIncludes(sub.stderr, "is not installed");
  },
});

Deno.test({
  name: "sge: a job that never starts is reported with its ID and state within the deadline, and deleted",
  ignore,
  fn: async () => {
    await ensureSge();
    await using mesh = await startMesh({ agents: 1 });
    const cfg = join(mesh.home.dir, "sge.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        listen: LOOPBACK,
        workDir: join(mesh.home.dir, "node"),
        qsubArgs: ["-h"],
        queueTimeout: 3,
      }),
    );
    const began = Date.now();
    const sub = await mesh.run(["submit", "--rms", "sge", "-n", "2", "-c", cfg, "--json"], {
      timeoutMs: 60_000,
    });
    assertEquals(sub.code, 1, sub.stderr);
    assert(Date.now() - began < 20_000, `reported within the deadline (${Date.now() - began} ms)`);
    const out = JSON.parse(sub.stdout) as SubmitJson;
    assertEquals(out.started, 0);
    const f = out.failures[0]!;
    assert(f.job && /^\d+\.1$/.test(f.job), `the failure names the job's task: ${JSON.stringify(f)}`);
    assertStringIncludes(f.reason, "did not start within 3 s");
    assertStringIncludes(f.reason, "hqw");
    const jobId = f.job.split(".")[0]!;
    await waitFor(async () => !(await queuedJobs()).includes(jobId), {
      timeout: 10_000,
      what: "the held job to go",
    });
    assert(!existsSync(join(mesh.home.dir, "node", "sessions")), "no pilot ran");
  },
});

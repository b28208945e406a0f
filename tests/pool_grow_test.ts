/**
 * `shoal pool grow` with real plug-ins: no agents while nothing waits; queued demand beyond the free slots
 * submits pilots (bounded by --max), the topology starts on them, and once the work is done the grown
 * agents idle out, leave the mesh and exit, ending their jobs.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  isRunning,
  joinArgs,
  SHOAL_BIN,
  spawnAgent,
  startMesh,
  type TestMesh,
  writeTopology,
} from "./_harness.ts";
import { ensureSlurm, queuedJobs, scancel, slurmMissing } from "./_slurm.ts";
import { waitFor } from "./_wait.ts";

interface Line {
  type: string;
  demand?: number;
  free?: number;
  grown?: number;
  pending?: number;
  submit?: number;
  agents?: { job: string; host: string; id: string }[];
  reason?: string;
}

/** Runs `shoal pool grow …` in the background, collecting its JSON lines. */
function grow(mesh: TestMesh, args: string[]) {
  const child = new Deno.Command(SHOAL_BIN, {
    args: ["pool", "grow", ...args, "--json", "--session", mesh.session],
    env: mesh.home.env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: Line[] = [];
  let stderr = "";
  const out = (async () => {
    let buf = "";
    for await (const c of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += c;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        lines.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
    }
  })();
  const err = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) stderr += c;
  })();
  let done = false;
  const exited = child.status.then(async (s) => {
    done = true;
    await Promise.all([out, err]);
    return s.code;
  });
  return {
    lines,
    stderr: () => stderr,
    exited,
    async [Symbol.asyncDispose]() {
      if (!done) child.kill("SIGTERM");
      await exited;
    },
  };
}

function topology(dir: string, n: number, seconds: number): string {
  return writeTopology(
    dir,
    "work.xml",
    `<topology name="work">
  <decltask name="T"><exe reachable="true">sleep ${seconds}</exe></decltask>
  <main name="main"><group name="g" n="${n}"><task>T</task></group></main>
</topology>`,
  );
}

async function aliveAgents(mesh: TestMesh): Promise<{ id: string; state: string }[]> {
  const r = await mesh.run(["info", "--json"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout).agents as { id: string; state: string }[]).filter((a) => a.state === "alive");
}

/** The scenario, for either plug-in; returns the grown agents' jobs. */
async function scenario(mesh: TestMesh, rmsArgs: string[]): Promise<{ job: string; id: string }[]> {
  await using g = grow(mesh, [
    ...rmsArgs,
    "--max",
    "2",
    "--step",
    "2",
    "--slots",
    "2",
    "--idle-timeout",
    "3",
    "--interval",
    "0.5",
    "--exit-when-idle",
  ]);
  // Nothing waits: it looks, and submits nothing.
  await waitFor(() => g.lines.filter((l) => l.type === "look").length >= 3, {
    timeout: 20_000,
    what: `pool grow to look three times; stderr:\n${g.stderr()}`,
  });
  assertEquals(g.lines.filter((l) => l.type !== "look"), [], "no pilots without demand");
  assertEquals((await aliveAgents(mesh)).length, 1);

  // 4 tasks on a pool of 1 slot: 3 short, 2 slots each → 2 agents, which --max allows.
  const q = await mesh.run(["topology", "activate", topology(mesh.home.dir, 4, 2), "--queue", "--no-wait"]);
  assertEquals(q.code, 0, q.stderr);
  const grown = await waitFor(() => g.lines.find((l) => l.type === "grown"), {
    timeout: 120_000,
    what: `the grown agents to join; lines: ${
      JSON.stringify(g.lines.filter((l) => l.type !== "look"))
    }\n${g.stderr()}`,
  });
  const submits = g.lines.filter((l) => l.type === "grow");
  assertEquals(submits.map((l) => l.submit), [2], "one submission of 2 agents");
  assertEquals(submits[0]!.demand, 4);
  assertEquals(grown.agents!.length, 2);

  // The work runs and ends; the grown agents idle out and exit; then grow exits too.
  assertEquals(await g.exited, 0, g.stderr());
  const p = JSON.parse((await mesh.run(["pool", "--json"])).stdout);
  assertEquals(p.finished.find((f: { id: string }) => f.id === "work")?.state, "done");
  const over = g.lines.filter((l) => l.type === "look" && (l.grown ?? 0) + (l.pending ?? 0) > 2);
  assertEquals(over, [], "never more than --max grown or pending");
  const alive = await waitFor(async () => {
    const a = await aliveAgents(mesh);
    return a.length === 1 ? a : undefined;
  }, { timeout: 15_000, what: "the grown agents to have left the view" });
  assertEquals(alive[0]!.id, mesh.agents[0]!.id, "the session's own agent stays");
  return grown.agents!;
}

Deno.test("pool grow --rms localhost: agents only while demand exists; idle ones exit after the timeout", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 1 });
  const jobs = await scenario(mesh, ["--rms", "localhost"]);
  await waitFor(() => jobs.every((j) => !isRunning(Number(j.job))), {
    timeout: 10_000,
    what: "the grown agents' processes to end",
  });
});

Deno.test("pool idle: an agent does not idle out while a topology waits in the queue, and does once it is gone", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 1 });
  await using agent = spawnAgent(mesh.home, "idler", [
    ...joinArgs(mesh),
    "--slots",
    "1",
    "--idle-timeout",
    "2",
    "--quiet",
  ]);
  const idler = await agent.ready();
  // 3 tasks on a pool of 2 slots: it waits (for a pool grow that is not running).
  const q = await mesh.run(["topology", "activate", topology(mesh.home.dir, 3, 1), "--queue", "--no-wait"]);
  assertEquals(q.code, 0, q.stderr);
  // The scheduler's pool log says it waits, every 10 s: two lines of it are well past the 2 s timeout.
  const poolLines = () =>
    [mesh.agents[0]!.dataDir, idler.dataDir].flatMap((d) => {
      try {
        return readFileSync(`${d}/agent.log`, "utf8").split("\n").filter((l) =>
          l.includes(" pool topology=work ")
        );
      } catch {
        return [];
      }
    });
  await waitFor(() => poolLines().length >= 2, {
    timeout: 40_000,
    what: "two pool log lines about the queued work",
  });
  assert(isRunning(idler.pid), "the idle agent stayed while work was queued");
  // The work leaves the queue: now it is idle, and goes.
  const c = await mesh.run(["pool", "cancel", "work"]);
  assertEquals(c.code, 0, c.stderr);
  assertEquals(await agent.exited, 0);
  assert(
    readFileSync(`${idler.dataDir}/agent.log`, "utf8").includes("idle past the idle timeout"),
    "it said why it left",
  );
});

const missing = slurmMissing();
const ignore = !!missing && !process.env.CI;
if (missing) console.warn(`pool grow slurm test: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

Deno.test({
  name: "pool grow --rms slurm: pilots submitted for the demand; idle agents exit and their job ends",
  ignore,
  fn: async () => {
    await ensureSlurm();
    await using mesh = await startMesh({ agents: 1, slots: 1 });
    const cfg = join(mesh.home.dir, "slurm.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        listen: "/ip4/127.0.0.1/tcp/0",
        workDir: join(mesh.home.dir, "node"),
        time: "10:00",
        agentsPerNode: 2,
      }),
    );
    const before = new Set(await queuedJobs());
    await using _cleanup = {
      [Symbol.asyncDispose]: async () => {
        for (const j of await queuedJobs()) if (!before.has(j)) await scancel(j);
      },
    };
    const jobs = await scenario(mesh, ["--rms", "slurm", "-c", cfg]);
    const ids = new Set(jobs.map((j) => j.job.split(":")[0]!));
    await waitFor(async () => (await queuedJobs()).every((j) => !ids.has(j)), {
      timeout: 30_000,
      what: `Slurm job(s) ${[...ids].join(", ")} to end`,
    });
  },
});

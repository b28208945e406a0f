/**
 * `shoal pilot show|script` with a pilots file (DIRAC's model): lists resolved per resource type with a
 * site step inserted, and a generated pilot that runs in a virgin environment — `env -i` with a PATH
 * holding only bash and coreutils — and adds its agent to a running mesh.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parsePilotLine, type PilotReport } from "../rms/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { createHome, isRunning, startMesh, type TestHome } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

const LOOPBACK = "/ip4/127.0.0.1/tcp/0";

/** A pilots file with a step directory: defaults for every plug-in, a GPU partition with a site check. */
function writePilots(dir: string): { cfg: string; pilots: string } {
  mkdirSync(join(dir, "site-steps"), { recursive: true });
  // Site steps: plain bash run in the pilot's shell (exports carry over), failing with `return 1`.
  writeFileSync(join(dir, "site-steps", "site-env.sh"), 'export SITE_SCRATCH="$SHOAL_WORK_DIR/scratch"\n');
  writeFileSync(
    join(dir, "site-steps", "gpu-check.sh"),
    'mkdir -p "$SITE_SCRATCH" && echo "gpu-check of $SHOAL_AGENT_NAME" >"$SITE_SCRATCH/gpu-checked"\n',
  );
  const pilots = join(dir, "pilots.yaml");
  writeFileSync(
    pilots,
    [
      "stepDirs: [site-steps]",
      "resources:",
      "  defaults: [check-env, site-env, stage-binary, write-config, start-agent, report]",
      "  slurm:gpu: { insert: [{ name: gpu-check, before: start-agent }] }",
      "",
    ].join("\n"),
  );
  const cfg = join(dir, "slurm.json");
  writeFileSync(cfg, JSON.stringify({ listen: LOOPBACK, workDir: join(dir, "node"), pilots: "pilots.yaml" }));
  return { cfg, pilots };
}

interface ShowJson {
  rms: string;
  resource: string;
  chain: string[];
  base: string;
  layers: string[];
  steps: { name: string; source: string }[];
}

Deno.test("pilot show: resolves by resource type (resource → plug-in → defaults) with a site step inserted", async () => {
  await using home = createHome();
  const { cfg, pilots } = writePilots(home.dir);
  const show = async (...args: string[]) => {
    const r = await home.run(["pilot", "show", "-c", cfg, "--json", ...args]);
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ShowJson;
  };
  const gpu = await show("--rms", "slurm", "--resource", "gpu");
  assertEquals(gpu.resource, "slurm:gpu");
  assertEquals(gpu.chain, ["slurm:gpu", "slurm", "defaults"]);
  assertEquals(gpu.base, "defaults");
  assertEquals(gpu.steps.map((s) => s.name), [
    "check-env",
    "site-env",
    "stage-binary",
    "write-config",
    "gpu-check",
    "start-agent",
    "report",
    "wait-agent",
  ]);
  assertEquals(gpu.steps[4]!.source, join(home.dir, "site-steps", "gpu-check.sh"));
  assertEquals(gpu.steps[0]!.source, "built-in");
  // The plug-in without a named resource: the defaults, no GPU check.
  const plain = await show("--rms", "slurm");
  assertEquals(plain.chain, ["slurm", "defaults"]);
  assert(!plain.steps.some((s) => s.name === "gpu-check"), "no gpu-check outside slurm:gpu");
  // ssh detaches its agents: no wait-agent. SGE's queue is its resource.
  const ssh = await home.run(["pilot", "show", "--rms", "ssh", "--pilots", pilots, "--json"]);
  assertEquals(ssh.code, 0, ssh.stderr);
  assertEquals((JSON.parse(ssh.stdout) as ShowJson).steps.at(-1)?.name, "report");
  const sgeCfg = join(home.dir, "sge.json");
  writeFileSync(sgeCfg, JSON.stringify({ queue: "gpu.q", pilots: "pilots.yaml" }));
  const sge = await home.run(["pilot", "show", "--rms", "sge", "-c", sgeCfg]);
  assertEquals(sge.code, 0, sge.stderr);
  assertStringIncludes(sge.stdout, "Pilot of sge:gpu.q");
  assertStringIncludes(sge.stdout, `site-env      ${join(home.dir, "site-steps", "site-env.sh")}`);

  // An unknown step is a usage error naming the file, the resource and the step.
  writeFileSync(pilots, "resources:\n  slurm: { insert: [{ name: gpu-chek }] }\n");
  const bad = await home.run(["pilot", "show", "-c", cfg]);
  assertEquals(bad.code, 2, bad.stderr);
  assertStringIncludes(bad.stderr, pilots);
  assertStringIncludes(bad.stderr, 'resource "slurm"');
  assertStringIncludes(bad.stderr, '"gpu-chek"');
  const none = await home.run(["pilot", "show", "--rms", "localhost"]);
  assertEquals(none.code, 2);
  assertStringIncludes(none.stderr, "without a pilot");
});

/** A directory of symlinks to bash and every program of Debian's coreutils, and nothing else. */
function bashAndCoreutils(home: TestHome): string {
  const bin = join(home.dir, "virgin-bin");
  mkdirSync(bin);
  const files = execFileSync("dpkg-query", ["-L", "coreutils"], { encoding: "utf8" }).split("\n")
    .filter((f) => /^\/(usr\/)?s?bin\/[^/]+$/.test(f));
  for (const f of [...files, "/bin/bash"]) {
    if (existsSync(f) && !existsSync(join(bin, basename(f)))) symlinkSync(f, join(bin, basename(f)));
  }
  return bin;
}

Deno.test({
  name:
    "pilot script: the generated pilot runs under `env -i` with only bash and coreutils and joins the mesh",
  ignore: !existsSync("/usr/bin/dpkg-query"),
  fn: async () => {
    await using mesh = await startMesh({ agents: 1 });
    const dir = mesh.home.dir;
    const { cfg } = writePilots(dir);
    const script = join(dir, "pilot.sh");
    const gen = await mesh.run([
      "pilot",
      "script",
      "--rms",
      "slurm",
      "-c",
      cfg,
      "--resource",
      "gpu",
      "-s",
      "3",
      "-o",
      script,
    ]);
    assertEquals(gen.code, 0, gen.stderr);
    const text = readFileSync(script, "utf8");
    assertStringIncludes(text, mesh.agents[0]!.addrs[0]!); // the running agent to bootstrap to

    const bin = bashAndCoreutils(mesh.home);
    assert(
      !existsSync(join(bin, "grep")) && !existsSync(join(bin, "sed")) && existsSync(join(bin, "sha256sum")),
    );
    const pilot = new Deno.Command("/usr/bin/env", {
      args: ["-i", `PATH=${bin}`, join(bin, "bash"), script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    let err = "";
    const reading = Promise.all([
      (async () => {
        for await (const c of pilot.stdout.pipeThrough(new TextDecoderStream())) out += c;
      })(),
      (async () => {
        for await (const c of pilot.stderr.pipeThrough(new TextDecoderStream())) err += c;
      })(),
    ]);
    await using _stop = {
      [Symbol.asyncDispose]: async () => {
        try {
          pilot.kill("SIGTERM");
        } catch { /* already gone */ }
        await pilot.status;
        await reading;
      },
    };
    const report = await waitFor(() => {
      const msg = out.split("\n").map((l) => parsePilotLine(l)).find((m) =>
        m?.type === "report" || m?.type === "fail"
      );
      if (msg?.type === "fail") throw new Error(`pilot failed in ${msg.step}: ${msg.reason}\n${err}`);
      // The step after the report is announced just after it: wait for that line too.
      return msg?.type === "report" && out.includes("@@shoal:step wait-agent\n") ? msg.report : undefined;
    }, {
      timeout: 60_000,
      what: "the pilot's report",
      detail: () => `stdout:\n${out}\nstderr:\n${err}`,
    }) as PilotReport;
    const steps = out.split("\n").filter((l) => l.startsWith("@@shoal:step ")).map((l) => l.slice(13));
    assertEquals(steps, [
      "check-env",
      "site-env",
      "stage-binary",
      "write-config",
      "gpu-check",
      "start-agent",
      "report",
      "wait-agent",
    ]);
    assertStringIncludes(
      readFileSync(join(dir, "node", "scratch", "gpu-checked"), "utf8"),
      "gpu-check of slurm-",
    );

    const view = await waitFor(async () => {
      const v = await mesh.viewOf(mesh.agents[0]!);
      const m = v.members.find((m) => m.id === report.agent.peerId);
      return m?.state === "alive" ? m : undefined;
    }, { timeout: 20_000, what: "the pilot's agent alive in the mesh" });
    assertEquals(view.slots.total, 3);

    // SIGTERM to the pilot stops its agent cleanly, and the pilot says how it ended.
    pilot.kill("SIGTERM");
    assertEquals((await pilot.status).code, 0);
    await reading;
    assertStringIncludes(out, "@@shoal:exit 0");
    assert(!/command not found|No such file/.test(err), `the pilot used nothing else:\n${err}`);
    assert(!isRunning(report.agent.pid), `agent ${report.agent.pid} stopped`);
    assertStringIncludes(readFileSync(join(report.dataDir, "agent.log"), "utf8"), "agent stopped");
  },
});

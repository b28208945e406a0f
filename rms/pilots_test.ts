import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../tests/_assert.ts";
import { RmsConfigError } from "./errors.ts";
import type { PilotStep } from "./pilot.ts";
import { loadPilotsFile, pilotStepsFor, resolvePilotFor, resourceType } from "./pilots.ts";

const names = (steps: PilotStep[]) => steps.map((s) => s.name);

/** A pilots file in a fresh directory with site steps `steps` (name → bash). */
function pilots(text: string, steps: Record<string, string> = {}, dir = "site-steps") {
  const root = mkdtempSync(join(tmpdir(), "shoal-pilots-"));
  mkdirSync(join(root, dir));
  for (const [name, run] of Object.entries(steps)) writeFileSync(join(root, dir, `${name}.sh`), run);
  const file = join(root, "pilots.yaml");
  writeFileSync(file, text);
  return { root, file, [Symbol.dispose]: () => rmSync(root, { recursive: true, force: true }) };
}

const FILE = `
stepDirs: site-steps
resources:
  defaults: [check-env, site-env, stage-binary, write-config, start-agent, report]
  slurm: { insert: [{ name: modules, run: "module load gcc", after: site-env }] }
  slurm:gpu-partition: { insert: [{ name: gpu-check, before: start-agent }] }
  sge:long.q: [check-env, stage-binary, write-config, start-agent, report]
`;

Deno.test("pilots: a resource's list falls back resource → plug-in → defaults → built-in, inserts on top", () => {
  using f = pilots(FILE, { "site-env": "export SITE=1", "gpu-check": "nvidia-smi -L" });
  const p = loadPilotsFile(f.file);
  const gpu = resolvePilotFor({ rms: "slurm", mode: "foreground", resource: "gpu-partition", pilots: p });
  assertEquals(gpu.chain, ["slurm:gpu-partition", "slurm", "defaults"]);
  assertEquals(gpu.base, "defaults");
  assertEquals(gpu.layers, ["defaults", "slurm", "slurm:gpu-partition"]);
  assertEquals(names(gpu.steps), [
    "check-env",
    "site-env",
    "modules",
    "stage-binary",
    "write-config",
    "gpu-check",
    "start-agent",
    "report",
    "wait-agent", // a foreground pilot always ends waiting for its agent
  ]);
  assertEquals(gpu.steps[1]?.source, join(f.root, "site-steps", "site-env.sh"));
  assertEquals(gpu.steps[5]?.run, "nvidia-smi -L");
  assertEquals(gpu.steps[0]?.source, "built-in");

  // Another partition of the same plug-in: slurm's inserts, not gpu-partition's.
  const cpu = resolvePilotFor({ rms: "slurm", mode: "foreground", resource: "slurm:cpu", pilots: p });
  assert(!names(cpu.steps).includes("gpu-check") && names(cpu.steps).includes("modules"));
  // A named resource with its own list takes nothing from below it.
  const long = resolvePilotFor({ rms: "sge", mode: "foreground", resource: "long.q", pilots: p });
  assertEquals(long.base, "sge:long.q");
  assertEquals(names(long.steps), [
    "check-env",
    "stage-binary",
    "write-config",
    "start-agent",
    "report",
    "wait-agent",
  ]);
  // ssh detaches its agents: defaults, no wait-agent.
  const ssh = resolvePilotFor({ rms: "ssh", mode: "detach", pilots: p });
  assertEquals(ssh.base, "defaults");
  assertEquals(names(ssh.steps).at(-1), "report");
  // Without a pilots file: the plug-in's built-in list.
  const bare = resolvePilotFor({ rms: "sge", mode: "foreground" });
  assertEquals(bare.base, "built-in");
  assertEquals(names(bare.steps), [
    "check-env",
    "stage-binary",
    "write-config",
    "start-agent",
    "report",
    "wait-agent",
  ]);
});

Deno.test("pilots: a site step replaces the built-in of its name; earlier step dirs win", () => {
  using f = pilots(
    "stepDirs: [site-steps, more]\nresources: {}\n",
    { "check-env": "echo site check", report: "echo first" },
  );
  mkdirSync(join(f.root, "more"));
  writeFileSync(join(f.root, "more", "report.sh"), "echo second");
  writeFileSync(join(f.root, "more", "README"), "not a step");
  const r = resolvePilotFor({ rms: "slurm", mode: "foreground", pilots: loadPilotsFile(f.file) });
  assertEquals(r.steps[0]?.run, "echo site check");
  assertEquals(r.steps.find((s) => s.name === "report")?.run, "echo first");
});

Deno.test("pilots: the plug-in config's own pilot section applies last", () => {
  using f = pilots(FILE, { "site-env": ":", "gpu-check": ":" });
  const cfg = {
    pilots: f.file,
    partition: "gpu-partition",
    pilot: { insert: [{ name: "last", run: ":", after: "report" }] },
  };
  const r = pilotStepsFor("slurm", "foreground", {}, cfg, cfg.partition);
  assertEquals(r.resource, "slurm:gpu-partition");
  assertEquals(r.layers.at(-1), "config");
  assertEquals(names(r.steps).slice(-3), ["report", "last", "wait-agent"]);
  // The request's resource and pilots file win over the config's.
  assertEquals(
    pilotStepsFor("slurm", "foreground", { resource: "other" }, cfg, cfg.partition).resource,
    "slurm:other",
  );
});

Deno.test("pilots: mistakes name the file, the resource and the step", () => {
  using f = pilots(FILE, { "site-env": ":" });
  const p = loadPilotsFile(f.file);
  const unknown = assertThrows(
    () => resolvePilotFor({ rms: "slurm", mode: "foreground", resource: "gpu-partition", pilots: p }),
    RangeError,
  );
  assertStringIncludes(unknown.message, 'resource "slurm:gpu-partition"');
  assertStringIncludes(unknown.message, '"gpu-check"');
  assertStringIncludes(unknown.message, "site-env"); // the known steps are listed
  assertStringIncludes(
    assertThrows(() => resourceType("slurm", "sge:all.q"), RangeError).message,
    'plug-in "sge"',
  );
  assertThrows(() => resourceType("slurm", "bad name"), RangeError);
  assertThrows(() => resourceType("slurm", "slurm:a:b"), RangeError);

  using detach = pilots("resources:\n  defaults: [start-agent, report, wait-agent]\n");
  assertStringIncludes(
    assertThrows(
      () => resolvePilotFor({ rms: "ssh", mode: "detach", pilots: loadPilotsFile(detach.file) }),
      RangeError,
    )
      .message,
    "wait-agent",
  );

  using yaml = pilots("resources:\n  slurm: [a, b\n");
  const broken = assertThrows(() => loadPilotsFile(yaml.file), RmsConfigError);
  assertStringIncludes(broken.message, yaml.file);
  using field = pilots("resources:\n  Slurm!: [report]\n");
  assertStringIncludes(assertThrows(() => loadPilotsFile(field.file), RmsConfigError).message, "resources");
  using dir = pilots("stepDirs: nowhere\n");
  assertStringIncludes(assertThrows(() => loadPilotsFile(dir.file), RmsConfigError).message, "nowhere");
  using name = pilots("stepDirs: site-steps\n", { "Bad Name": ":" });
  assertStringIncludes(assertThrows(() => loadPilotsFile(name.file), RmsConfigError).message, "Bad Name");
  assertStringIncludes(
    assertThrows(() => loadPilotsFile(join(f.root, "missing.yaml")), RmsConfigError).message,
    "Cannot read",
  );
});

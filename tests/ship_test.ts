/**
 * Shipped executables (`reachable="false"`) travel once per lease, not once per task: 70 tasks of a 1 MiB
 * executable on one agent would be a 70 MiB lease request, over its 64 MiB limit, if each task carried it.
 * And the agent writes it once, linking it into each sandbox.
 */
import { chmodSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { assertEquals } from "./_assert.ts";
import { ps, startMesh, writeTopology } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

Deno.test("deploy: a 1 MiB shipped executable for 70 tasks on one agent travels once and every task runs it", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 70 });
  const exe = join(mesh.home.dir, "big-task");
  // A shell script padded to 1 MiB with a comment line; it prints its own size and exits.
  const body = `#!/bin/sh\nwc -c < "$0"\nexit 0\n`;
  Deno.writeTextFileSync(exe, body + "#" + "x".repeat(1024 * 1024 - body.length - 2) + "\n");
  chmodSync(exe, 0o755);
  const topo = writeTopology(
    mesh.home.dir,
    "ship.xml",
    `<topology name="ship">
  <decltask name="Big"><exe reachable="false">${exe}</exe></decltask>
  <main name="main"><group name="g" n="70"><task>Big</task></group></main>
</topology>`,
  );
  const act = await mesh.run(["topology", "activate", topo]);
  assertEquals(act.code, 0, act.stderr);
  const tasks = await waitFor(async () => {
    const t = await ps(mesh);
    return t.length === 70 && t.every((x) => x.state === "exited") ? t : undefined;
  }, { timeout: 60_000, what: "70 tasks to run and exit" });
  assertEquals(tasks.filter((t) => t.exitCode === 0).length, 70);
  const logs = await mesh.run(["logs", "--no-prefix", "main/g/Big_"]);
  assertEquals(logs.stdout.trim().split("\n").map((l) => l.trim()), Array(70).fill(String(1024 * 1024)));
  // Written once on the agent: every sandbox holds a hard link to one cached copy.
  const copies: number[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name === "big-task") copies.push(statSync(join(dir, e.name)).ino);
    }
  };
  walk(join(mesh.agents[0]!.dataDir, "tasks"));
  assertEquals(copies.length, 70);
  assertEquals(new Set(copies).size, 1);
});

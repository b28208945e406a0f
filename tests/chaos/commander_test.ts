/**
 * Chaos: a commander killed in the middle of `shoal topology update` (SIGKILL, after the removed tasks
 * stopped and while the added ones start). Whatever moment it dies, the topology ends consistent: the
 * unchanged tasks keep their PIDs, the removed ones are gone, the added ones either all run and are recorded
 * or, after the agents' orphan grace, none run; no path ever runs twice; the record lists exactly what
 * runs. The same update run again then finishes the job.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { topologyRecord } from "../_commanders.ts";
import { processesWith, ps, SHOAL_BIN, startMesh, writeTopology } from "../_harness.ts";
import { holdsUntil, waitFor } from "../_wait.ts";

const RUN = 10_000 + Math.floor(Math.random() * 80_000);
const KEEP = `sleep 5301${RUN}`;
const GONE = `sleep 5302${RUN}`;
const NEW = `sleep 5303${RUN}`;

function topology(parts: { name: string; exe: string; n: number }[]): string {
  return `<topology name="Upd">
${parts.map((p) => `  <decltask name="${p.name}"><exe reachable="true">${p.exe}</exe></decltask>`).join("\n")}
  <main name="main">
${parts.map((p) => `    <group name="${p.name}g" n="${p.n}"><task>${p.name}</task></group>`).join("\n")}
  </main>
</topology>`;
}

/** Every task path runs at most once, and the record lists exactly the paths that run. */
async function consistent(mesh: Awaited<ReturnType<typeof startMesh>>): Promise<string[]> {
  const tasks = (await ps(mesh)).filter((t) => t.state === "running");
  const paths = tasks.map((t) => t.path).sort();
  assertEquals(new Set(paths).size, paths.length, `a path runs twice: ${paths}`);
  const record = await topologyRecord(mesh, mesh.agents[0]!, "Upd");
  assertEquals(Object.values(record!.placement).flat().sort(), paths, "the record lists what runs");
  return paths;
}

Deno.test({
  name:
    "chaos: a commander SIGKILLed mid-update leaves a consistent topology, and the update run again finishes",
  sanitizeResources: false,
  async fn() {
    await using mesh = await startMesh({ agents: 4, slots: 30 });
    const before = writeTopology(
      mesh.home.dir,
      "before.xml",
      topology([{ name: "Keep", exe: KEEP, n: 8 }, { name: "Gone", exe: GONE, n: 4 }]),
    );
    const act = await mesh.run(["topology", "activate", before]);
    assertEquals(act.code, 0, act.stderr);
    const keptPids = processesWith(KEEP).sort();
    assertEquals(keptPids.length, 8);
    const after = writeTopology(
      mesh.home.dir,
      "after.xml",
      topology([{ name: "Keep", exe: KEEP, n: 8 }, { name: "New", exe: NEW, n: 100 }]),
    );
    const update = new Deno.Command(SHOAL_BIN, {
      args: ["topology", "update", after, "--session", mesh.session],
      env: mesh.home.env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Half-way: the first added task runs (the removed ones stopped before any was leased).
    await waitFor(() => processesWith(NEW).length > 0, {
      timeout: 30_000,
      interval: 5,
      what: "an added task",
    });
    update.kill("SIGKILL");
    await update.status;
    const started = processesWith(NEW).length;
    console.log(`chaos update: commander killed with ${started} of 100 added tasks running`);

    // It settles one way or the other: all added tasks recorded, or (after the grace) none running.
    const outcome = await waitFor(async () => {
      const n = processesWith(NEW).length;
      if (n !== 0 && n !== 100) return undefined;
      const record = await topologyRecord(mesh, mesh.agents[0]!, "Upd");
      const placed = Object.values(record!.placement).flat().filter((p) => p.includes("New")).length;
      return placed === n ? (n === 100 ? "all" : "none") : undefined;
    }, { timeout: 40_000, interval: 200, what: "the added tasks all recorded, or none running" });
    console.log(`chaos update: outcome ${outcome}`);
    assertEquals(processesWith(GONE).length, 0, "the removed tasks are gone");
    assertEquals(processesWith(KEEP).sort(), keptPids, "the unchanged tasks keep their PIDs");
    assertEquals((await consistent(mesh)).length, outcome === "all" ? 108 : 8);
    // Nothing starts or stops on its own afterwards.
    const settledAt = Date.now();
    await holdsUntil(
      () => processesWith(NEW).length === (outcome === "all" ? 100 : 0),
      () => Date.now() - settledAt > 3_000,
      { timeout: 10_000, holds: "the outcome holds", what: "3 s" },
    );

    const again = await mesh.run(["topology", "update", after, "--json"]);
    assertEquals(again.code, 0, again.stderr);
    const r = JSON.parse(again.stdout) as { added: string[] };
    assertEquals(r.added.length, outcome === "all" ? 0 : 100);
    assertEquals(processesWith(NEW).length, 100);
    assertEquals(processesWith(KEEP).sort(), keptPids);
    const paths = await consistent(mesh);
    assertEquals(paths.length, 108);
    const record = await topologyRecord(mesh, mesh.agents[0]!, "Upd");
    assert(record!.removing === undefined, "a finished update leaves no removing list");
    assertEquals((await mesh.run(["topology", "stop"])).code, 0);
  },
});

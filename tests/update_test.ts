/**
 * `shoal topology update` that cannot be placed: refused before anything stops (DDS's `--update`).
 */
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { isRunning, processesWith, ps, startMesh, writeTopology } from "./_harness.ts";

/** A per-run number in sleep arguments, so that leftovers of other runs never count. */
const RUN = 10_000 + Math.floor(Math.random() * 80_000);

function topology(tasks: Record<string, { n: number; marker: string }>): string {
  const decl = Object.entries(tasks).map(([name, t]) =>
    `<decltask name="${name}"><exe reachable="true">sleep ${t.marker}</exe></decltask>`
  );
  const groups = Object.entries(tasks).map(([name, t]) =>
    `<group name="${name.toLowerCase()}" n="${t.n}"><task>${name}</task></group>`
  );
  return `<topology name="Refuse">${decl.join("")}<main name="main">${groups.join("")}</main></topology>`;
}

Deno.test("update: an update that cannot be placed is refused before anything stops; every task keeps its PID", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const keep = { n: 2, marker: `4101${RUN}` };
  const drop = { n: 1, marker: `4102${RUN}` };
  const add = { n: 3, marker: `4103${RUN}` };
  const v1 = writeTopology(mesh.home.dir, "v1.xml", topology({ Keep: keep, Drop: drop }));
  // Dropping "Drop" frees 1 slot, so 2 are free for the 3 added tasks: it fits only if Keep were stopped too.
  const v2 = writeTopology(mesh.home.dir, "v2.xml", topology({ Keep: keep, Add: add }));
  const act = await mesh.run(["topology", "activate", v1]);
  assertEquals(act.code, 0, act.stderr);
  const before = await ps(mesh);
  assertEquals(before.length, 3);
  assert(before.every((t) => t.state === "running" && t.pid && isRunning(t.pid)), JSON.stringify(before));

  const upd = await mesh.run(["topology", "update", v2]);
  assertEquals(upd.code, 1, `${upd.stdout}\n${upd.stderr}`);
  assertStringIncludes(upd.stderr, "Update refused, nothing was stopped");
  assertStringIncludes(upd.stderr, "Add");

  const after = await ps(mesh);
  const pids = (tasks: typeof before) => tasks.map((t) => `${t.path} ${t.state} ${t.pid}`).sort();
  assertEquals(pids(after), pids(before), "the same tasks run with the same PIDs");
  for (const t of before) assert(isRunning(t.pid!), `${t.path} (${t.pid}) still runs`);
  assertEquals(processesWith(`sleep ${drop.marker}`).length, 1, "the task the update would drop still runs");
  assertEquals(processesWith(`sleep ${keep.marker}`).length, 2);
  assertEquals(processesWith(`sleep ${add.marker}`), [], "no added task started");
  // The recorded topology is still v1: updating to v1 changes nothing.
  const same = await mesh.run(["topology", "update", v1]);
  assertEquals(same.code, 0, same.stderr);
  assertStringIncludes(same.stdout, 'No changes to "Refuse"');
});

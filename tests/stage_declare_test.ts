/**
 * Declared staged names end to end: tasks that name `$SHOAL_STAGE/<name>` (in their command line, or as a
 * DDS asset whose value is exactly that) run on agents that did not hold the name, which pull it from the
 * agent that did before starting them; a name nobody holds refuses the activation before anything starts.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ps, startMesh, writeTopology } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

const MiB = 1024 * 1024;

/** `bytes` pseudo-random bytes, distinct per seed. */
function data(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed >>> 0;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

interface StageLs {
  agents: { agent: string; staged: { name: string; complete: boolean }[] }[];
}

Deno.test("stage: tasks on every agent that declare names staged to one agent each pull them first and read them intact; assets link them into the sandbox", async () => {
  await using mesh = await startMesh({ agents: 3, slots: 2 });
  const [a0, a1] = [mesh.agents[0]!, mesh.agents[1]!];
  const calib = join(mesh.home.dir, "calib.bin");
  writeFileSync(calib, data(3 * MiB + 17, 1));
  const inputs = join(mesh.home.dir, "inputs");
  mkdirSync(join(inputs, "sub"), { recursive: true });
  writeFileSync(join(inputs, "a.bin"), data(MiB + 5, 2));
  writeFileSync(join(inputs, "sub", "b.txt"), "hello\n");
  for (const [path, name, to] of [[calib, "calib", a0.id], [inputs, "run42", a1.id]]) {
    const put = await mesh.run(["stage", "put", path!, "--name", name!, "--to", to!]);
    assertEquals(put.code, 0, put.stderr);
  }
  const [hCalib, hA] = [sha256(calib), sha256(join(inputs, "a.bin"))];
  // 6 tasks on 6 slots: each agent runs two, so two of them hold neither name when the leases arrive.
  const topo = writeTopology(
    mesh.home.dir,
    "declare.xml",
    `<topology name="declare">
  <asset name="calib_bin" type="inline" visibility="task" value="$SHOAL_STAGE/calib"/>
  <asset name="inputs" type="inline" visibility="task" value="$SHOAL_STAGE/run42"/>
  <decltask name="Use"><exe reachable="true">sha256sum $SHOAL_STAGE/calib | grep -q ${hCalib}</exe></decltask>
  <decltask name="Asset">
    <exe reachable="true">sha256sum calib_bin | grep -q ${hCalib} &amp;&amp; sha256sum inputs/a.bin | grep -q ${hA} &amp;&amp; grep -q hello inputs/sub/b.txt</exe>
    <assets><name>calib_bin</name><name>inputs</name></assets>
  </decltask>
  <main name="main">
    <group name="u" n="3"><task>Use</task></group>
    <group name="s" n="3"><task>Asset</task></group>
  </main>
</topology>`,
  );
  const act = await mesh.run(["topology", "activate", topo], { timeoutMs: 90_000 });
  assertEquals(act.code, 0, act.stderr);
  const tasks = await waitFor(async () => {
    const t = await ps(mesh);
    return t.length === 6 && t.every((x) => x.state === "exited" || x.state === "failed") ? t : undefined;
  }, { timeout: 60_000, what: "the 6 tasks to exit" });
  assertEquals(
    tasks.map((t) => [t.path, t.state, t.exitCode, t.reason]),
    tasks.map((t) => [t.path, "exited", 0, undefined]),
  );
  assertEquals(new Set(tasks.map((t) => t.agent)).size, 3, "tasks ran on every agent");
  // Each name is now complete wherever a task declared it: pulled from the one agent that had it.
  const ls = JSON.parse((await mesh.run(["stage", "ls", "--json"])).stdout) as StageLs;
  const withAsset = new Set(tasks.filter((t) => t.path.startsWith("main/s/")).map((t) => t.agent));
  for (const a of ls.agents) {
    const names = a.staged.filter((s) => s.complete).map((s) => s.name).sort();
    const want = a.agent === a1.id || withAsset.has(a.agent) ? ["calib", "run42"] : ["calib"];
    assertEquals(names, want, `complete on ${a.agent}`);
  }
  // An asset naming a staged name is a hard link to the staged file (a directory of links for a tree).
  for (const t of tasks.filter((t) => t.path.startsWith("main/s/"))) {
    const agent = mesh.agents.find((a) => a.id === t.agent)!;
    const sandbox = join(agent.dataDir, "tasks", "declare", t.path.replaceAll("/", "_"));
    const stage = join(agent.dataDir, "stage");
    const ino = (p: string) => Deno.lstatSync(p).ino;
    assertEquals(ino(join(sandbox, "calib_bin")), ino(join(stage, "calib")), sandbox);
    assert(Deno.lstatSync(join(sandbox, "inputs")).isDirectory, "a staged tree is a directory");
    assertEquals(ino(join(sandbox, "inputs", "a.bin")), ino(join(stage, "run42", "a.bin")));
    assertEquals(ino(join(sandbox, "inputs", "sub", "b.txt")), ino(join(stage, "run42", "sub", "b.txt")));
    assertEquals(sha256(join(sandbox, "calib_bin")), hCalib);
  }
  await mesh.run(["topology", "stop"]);
});

Deno.test("stage: a topology declaring a name no agent holds is refused before any task starts, naming it", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const put = await mesh.run([
    "stage",
    "put",
    writeTopology(mesh.home.dir, "x.txt", "x\n"),
    "--name",
    "held",
  ]);
  assertEquals(put.code, 0, put.stderr);
  const topo = writeTopology(
    mesh.home.dir,
    "missing.xml",
    `<topology name="missing">
  <asset name="cfg" type="inline" visibility="task" value="$SHOAL_STAGE/other"/>
  <decltask name="Sleeper"><exe reachable="true">sleep 600</exe></decltask>
  <decltask name="Use"><exe reachable="true">cat $SHOAL_STAGE/held $SHOAL_STAGE/calib</exe></decltask>
  <decltask name="Cfg"><exe reachable="true">cat cfg</exe><assets><name>cfg</name></assets></decltask>
  <main name="main"><task>Sleeper</task><task>Use</task><task>Cfg</task></main>
</topology>`,
  );
  const act = await mesh.run(["topology", "activate", topo]);
  assertEquals(act.code, 1, act.stderr);
  const line = act.stderr.trim();
  for (const name of ["calib", "other"]) {
    assert(
      line.includes(
        `Staged name "${name}" is held by no agent; run \`shoal stage put <path> --name ${name}\` first`,
      ),
      line,
    );
  }
  assert(!line.includes('"held"'), line);
  assertEquals(await ps(mesh), [], "nothing started");
  const again = await mesh.run(["topology", "activate", topo]);
  assertEquals(again.code, 1, "and the topology was not recorded active");
  assert(again.stderr.includes("is held by no agent"), again.stderr);
});

/**
 * Key-value propagation on a real local mesh: the built binary as agent and as the tasks' shell helper,
 * real task processes, DDS's access and scope rules, stored multi-writer values.
 */
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ps, startMesh, writeTopology } from "./_harness.ts";
import { logsOf, runToEnd, script } from "./_task_scripts.ts";
import { waitFor } from "./_wait.ts";

interface KvJson {
  key: string;
  values: { value: string; sender: string; path: string; version: string; scope?: string }[];
}

Deno.test("kv: DDS tutorial1 — N workers write their index, one reader collects all and replies", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 4 });
  const n = 6;
  const writer = script(
    mesh,
    "writer.sh",
    `$SHOAL kv put TaskIndexProperty "$DDS_TASK_INDEX" || exit 11
$SHOAL kv get ReplyProperty --wait --timeout 30 || exit 12`,
  );
  const reader = script(
    mesh,
    "reader.sh",
    `$SHOAL kv get TaskIndexProperty --wait-count ${n} --timeout 30 --json || exit 21
$SHOAL kv put ReplyProperty "collected ${n}" || exit 22`,
  );
  const file = writeTopology(
    mesh.home.dir,
    "tut1.xml",
    `<topology name="Tutorial1">
  <property name="TaskIndexProperty"/>
  <property name="ReplyProperty"/>
  <decltask name="TaskTypeOne"><exe reachable="true">${writer}</exe>
    <properties><name access="write">TaskIndexProperty</name><name access="read">ReplyProperty</name></properties>
  </decltask>
  <decltask name="TaskTypeTwo"><exe reachable="true">${reader}</exe>
    <properties><name access="read">TaskIndexProperty</name><name access="write">ReplyProperty</name></properties>
  </decltask>
  <main name="main"><task>TaskTypeTwo</task>
    <group name="typeTwoGroup" n="${n}"><task>TaskTypeOne</task></group></main>
</topology>`,
  );
  const tasks = await runToEnd(mesh, file);
  assertEquals(tasks.map((t) => [t.path, t.exitCode]).filter(([, c]) => c !== 0), []);
  assertEquals(new Set(tasks.map((t) => t.agent)).size, 2, "tasks ran on both agents");
  const collected = JSON.parse(await logsOf(mesh, "TaskTypeTwo")) as KvJson;
  assertEquals(collected.key, "TaskIndexProperty");
  assertEquals(collected.values.map((v) => v.value).sort(), ["0", "1", "2", "3", "4", "5"]);
  const writers = tasks.filter((t) => t.path.includes("TaskTypeOne"));
  assertEquals(collected.values.map((v) => v.sender).sort(), writers.map((t) => t.id).sort());
  assert(collected.values.every((v) => /^\d{15}\.\d{6}$/.test(v.version)));
  const replies = (await logsOf(mesh, "TaskTypeOne")).trim().split("\n");
  assertEquals(replies, Array(n).fill(`collected ${n}`));
  // A tool reads the stored values too.
  const tool = await mesh.run(["kv", "get", "TaskIndexProperty", "--json"]);
  assertEquals(tool.code, 0, tool.stderr);
  assertEquals((JSON.parse(tool.stdout) as KvJson).values.length, n);
});

Deno.test("kv: access violations are refused naming the property; a forged token is refused", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 2 });
  const task = script(
    mesh,
    "bad.sh",
    `exec 2>&1
$SHOAL kv put ReadOnly x; echo "put-readonly=$?"
$SHOAL kv get WriteOnly; echo "get-writeonly=$?"
$SHOAL kv put Undeclared x; echo "put-undeclared=$?"
SHOAL_TASK_TOKEN=forged-token $SHOAL kv put WriteOnly x; echo "forged=$?"
curl -s --unix-socket "$SHOAL_SOCKET" -X PUT --data-binary v -H "Authorization: Bearer $SHOAL_TASK_TOKEN" http://task/v1/kv/WriteOnly; echo " curl=$?"
big=$(head -c 70000 /dev/zero | tr '\\0' a); $SHOAL kv put WriteOnly "$big"; echo "big=$?"
$SHOAL kv put WriteOnly ok; echo "put-ok=$?"`,
  );
  const file = writeTopology(
    mesh.home.dir,
    "acl.xml",
    `<topology name="Acl">
  <property name="ReadOnly"/><property name="WriteOnly"/><property name="Undeclared"/>
  <decltask name="Bad"><exe reachable="true">${task}</exe>
    <properties><name access="read">ReadOnly</name><name access="write">WriteOnly</name></properties></decltask>
  <main name="main"><task>Bad</task></main>
</topology>`,
  );
  await runToEnd(mesh, file);
  const out = await logsOf(mesh, "Bad");
  for (
    const expect of ["put-readonly=1", "get-writeonly=1", "put-undeclared=1", "forged=1", "big=2", "put-ok=0"]
  ) {
    assertStringIncludes(out, expect);
  }
  assertStringIncludes(out, `may not write property "ReadOnly"`);
  assertStringIncludes(out, `may not read property "WriteOnly"`);
  assertStringIncludes(out, `does not declare property "Undeclared"`);
  assertStringIncludes(out, "Unknown or missing task token");
  assertStringIncludes(out, "exceeds the 65536-byte limit");
  assertStringIncludes(out, `"key":"WriteOnly"`);
  const tool = JSON.parse((await mesh.run(["kv", "get", "WriteOnly", "--json"])).stdout) as KvJson;
  assertEquals(tool.values.map((v) => v.value), ["ok"]);
  assertEquals(
    JSON.parse((await mesh.run(["kv", "get", "ReadOnly", "--json"])).stdout),
    { key: "ReadOnly", values: [] },
  );
});

Deno.test("kv: collection scope propagates only within the same collection instance", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 4 });
  const task = script(
    mesh,
    "coll.sh",
    `$SHOAL kv put CollProp "c$DDS_COLLECTION_INDEX" || exit 1
$SHOAL kv put Done 1 || exit 2
$SHOAL kv get Done --wait-count 6 --timeout 30 >/dev/null || exit 3
$SHOAL kv get CollProp --json`,
  );
  const file = writeTopology(
    mesh.home.dir,
    "coll.xml",
    `<topology name="Coll">
  <property name="CollProp" scope="collection"/><property name="Done"/>
  <decltask name="T"><exe reachable="true">${task}</exe>
    <properties><name access="readwrite">CollProp</name><name access="readwrite">Done</name></properties></decltask>
  <declcollection name="C"><tasks><name n="2">T</name></tasks></declcollection>
  <main name="main"><group name="g" n="3"><collection>C</collection></group></main>
</topology>`,
  );
  const tasks = await runToEnd(mesh, file);
  assertEquals(tasks.filter((t) => t.exitCode !== 0), []);
  for (const t of tasks) {
    const seen = JSON.parse(await logsOf(mesh, `${t.path}$`)) as KvJson;
    const coll = /C_(\d+)\//.exec(t.path)![1];
    assertEquals(seen.values.map((v) => v.value), [`c${coll}`, `c${coll}`], t.path);
  }
  const tool = JSON.parse((await mesh.run(["kv", "get", "CollProp", "--json"])).stdout) as KvJson;
  assertEquals(new Set(tool.values.map((v) => v.scope)).size, 3);
});

Deno.test("kv: a late task and a late agent see values written before them; watch and delete", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 3 });
  const early = script(mesh, "early.sh", `$SHOAL kv put P early && $SHOAL kv put Q q1 && $SHOAL kv del Q`);
  const late = script(
    mesh,
    "late.sh",
    `$SHOAL kv get P --json
$SHOAL kv watch --from 0 --count 2 --timeout 20 --json`,
  );
  const topo = (withLate: boolean) =>
    `<topology name="Late">
  <property name="P"/><property name="Q"/>
  <decltask name="Early"><exe reachable="true">${early}</exe>
    <properties><name access="write">P</name><name access="write">Q</name></properties></decltask>
  <decltask name="Late"><exe reachable="true">${late}</exe>
    <properties><name access="read">P</name><name access="read">Q</name></properties></decltask>
  <main name="main"><task>Early</task>${withLate ? "<task>Late</task>" : ""}</main>
</topology>`;
  await runToEnd(mesh, writeTopology(mesh.home.dir, "v1.xml", topo(false)));
  const upd = await mesh.run(["topology", "update", writeTopology(mesh.home.dir, "v2.xml", topo(true))]);
  assertEquals(upd.code, 0, upd.stderr);
  await waitFor(async () => (await ps(mesh)).every((t) => t.state === "exited"), { what: "Late to end" });
  const lines = (await logsOf(mesh, "Late")).trim().split("\n").map((l) => JSON.parse(l) as KvJson);
  assertEquals(lines[0]!.values.map((v) => v.value), ["early"]);
  const watched = lines.slice(1).map((
    l,
  ) => [l.key, l.values[0]!.value, Boolean((l.values[0] as { deleted?: boolean }).deleted)]);
  // The store keeps each writer's latest state: Q's tombstone replaced its value.
  assertEquals(watched, [["P", "early", false], ["Q", "", true]]);
  assertEquals(JSON.parse((await mesh.run(["kv", "get", "Q", "--json"])).stdout).values, []);

  // A late agent: it pulls the store on join.
  const { spawnAgent } = await import("./_harness.ts");
  await using agent = spawnAgent(mesh.home, "late", [
    "--swarm-key",
    mesh.swarmKeyFile,
    "--bootstrap",
    mesh.agents[0]!.addrs[0]!,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
  ]);
  const info = await agent.ready();
  const { createMeshNode, readSwarmKey } = await import("../mesh/mod.ts");
  const { listEntries } = await import("../agent/mod.ts");
  await using probe = await createMeshNode({ swarmKey: await readSwarmKey(mesh.swarmKeyFile) });
  const entries = await waitFor(async () => {
    const e = await listEntries(probe, info.addrs[0]!, { topologyId: "Late" });
    return e.length === 2 ? e : undefined;
  }, { timeout: 15_000, what: "the late agent to hold the values" });
  assertEquals(entries.map((e) => [e.key, e.value, e.deleted]).sort(), [["P", "early", false], [
    "Q",
    "",
    true,
  ]]);
  agent.kill("SIGTERM");
  assertEquals(await agent.exited, 0);
});

Deno.test("kv: 1,000 keys written by tasks on 4 agents converge on every agent", async () => {
  await using mesh = await startMesh({ agents: 4, slots: 1 });
  const task = script(
    mesh,
    "many.sh",
    `# One curl for 250 requests on one connection: a process per write would measure fork, not shoal.
i=0
while [ $i -lt 250 ]; do
  k=$((DDS_TASK_INDEX * 250 + i))
  [ $i -gt 0 ] && echo next
  echo "url = \\"http://task/v1/kv/key$k\\""
  echo "request = PUT"
  echo "data-binary = \\"v$k\\""
  echo "unix-socket = \\"$SHOAL_SOCKET\\""
  echo "header = \\"Authorization: Bearer $SHOAL_TASK_TOKEN\\""
  echo "fail"
  echo "silent"
  echo "output = /dev/null"
  i=$((i + 1))
done > curl.cfg
curl -K curl.cfg`,
  );
  const props = Array.from({ length: 1000 }, (_, i) => `<property name="key${i}"/>`).join("");
  const refs = Array.from({ length: 1000 }, (_, i) => `<name access="write">key${i}</name>`).join("");
  const file = writeTopology(
    mesh.home.dir,
    "many.xml",
    `<topology name="Many">${props}
  <decltask name="W"><exe reachable="true">${task}</exe><properties>${refs}</properties></decltask>
  <main name="main"><group name="g" n="4"><task>W</task></group></main>
</topology>`,
  );
  const tasks = await runToEnd(mesh, file);
  assertEquals(tasks.filter((t) => t.exitCode !== 0), []);
  const { createMeshNode, readSwarmKey } = await import("../mesh/mod.ts");
  const { listEntries } = await import("../agent/mod.ts");
  await using probe = await createMeshNode({ swarmKey: await readSwarmKey(mesh.swarmKeyFile) });
  for (const agent of mesh.agents) {
    await waitFor(
      async () => (await listEntries(probe, agent.addrs[0]!, { topologyId: "Many" })).length === 1000,
      {
        timeout: 20_000,
        what: `agent ${agent.id} to hold 1,000 keys`,
      },
    );
  }
  const one = await listEntries(probe, mesh.agents[3]!.addrs[0]!, { topologyId: "Many", key: "key777" });
  assertEquals(one.map((e) => e.value), ["v777"]);
});

Deno.test("kv: a topology activated again after stop starts with no values", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 1 });
  const task = script(mesh, "again.sh", `$SHOAL kv get P --json && $SHOAL kv put P "$DDS_TASK_INDEX"`);
  const file = writeTopology(
    mesh.home.dir,
    "again.xml",
    `<topology name="Again"><property name="P"/>
  <decltask name="T"><exe reachable="true">${task}</exe><properties><name access="readwrite">P</name></properties></decltask>
  <main name="main"><task>T</task></main>
</topology>`,
  );
  for (let run = 0; run < 2; run++) {
    const tasks = await runToEnd(mesh, file);
    assertEquals(tasks.map((t) => t.exitCode), [0]);
    // Each run logs what it read first: nothing, in every run.
    const lines = (await logsOf(mesh, "T_0")).trim().split("\n");
    assertEquals(lines, Array(run + 1).fill(`{"key":"P","values":[]}`), `run ${run} saw no old value`);
    assertEquals(JSON.parse((await mesh.run(["kv", "get", "P", "--json"])).stdout).values.length, 1);
    assertEquals((await mesh.run(["topology", "stop"])).code, 0);
  }
});

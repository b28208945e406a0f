/**
 * Conformance with DDS: DDS's own topology files, as they are, parse, expand to the paths and counts DDS
 * gives them, are refused when DDS refuses them, and run on a real local mesh. The files are DDS's and not in
 * this repository (see `_dds_conformance_corpus.ts`); without them the suite is skipped with one line saying how to run
 * it. shoal's own topologies (`topology/testdata`) cover the same ground in the unit tests.
 */
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AgentSlots,
  diffTopologies,
  expandTopology,
  formatDiff,
  formatTree,
  loadTopology,
  parseTopology,
  placeTasks,
  TOPOLOGY_JSON_FORMAT,
  topologyFromJson,
  type TopologyIssue,
  topologyToJson,
  TopologyValidationError,
  validateFiles,
  viewJson,
} from "../topology/mod.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "./_assert.ts";
import { ddsCorpus } from "./_dds_conformance_corpus.ts";
import { isRunning, ps, runShoal, startMesh } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

const corpus = ddsCorpus();
const wanted = new Set<string>();
const absent = new Set<string>();
let registered = 0;
let skipped = 0;

/** A test that needs DDS files `files`; ignored when the corpus lacks one, unless the corpus is required. */
function ddsTest(name: string, files: string[], fn: () => Promise<void> | void): void {
  const missing = corpus.missing(files);
  for (const f of files) wanted.add(f);
  for (const m of missing) absent.add(m);
  registered++;
  if (missing.length) skipped++;
  Deno.test({ name: `dds: ${name}`, ignore: missing.length > 0 && !corpus.required, fn });
}

const expandFile = async (name: string, vars?: Record<string, string>) =>
  expandTopology(await loadTopology(corpus.file(name), { vars }));
const expandText = (xml: string, vars?: Record<string, string>) =>
  expandTopology(parseTopology(xml, { vars }));
const seq = (base: string, n: number) => Array.from({ length: n }, (_, i) => `${base}_${i}`);
const inColl = (coll: string, ...tasks: [string, number][]) =>
  tasks.flatMap(([t, n]) => seq(`${coll}/${t}`, n));

/** What DDS's Sleep and Env test topologies expand to. */
function sleepLike(task: string, coll: string, group: string): { tasks: string[]; collections: string[] } {
  const tasks = [`main/${task}_0`, ...inColl(`main/${coll}_0`, [task, 2])];
  for (let g = 0; g < 2; g++) {
    tasks.push(`main/${group}/${task}_${g}`, ...inColl(`main/${group}/${coll}_${g}`, [task, 2]));
  }
  return { tasks, collections: [`main/${coll}_0`, `main/${group}/${coll}_0`, `main/${group}/${coll}_1`] };
}

const VALID = [
  "custom_cmd_test.xml",
  "env_test.xml",
  "sleep_test.xml",
  "topology_scheduler_test_1.xml",
  "topology_test_assets.xml",
  "topology_test_property_1.xml",
  "tutorial1_topo.xml",
  "tutorial2_topo.xml",
];
const OLD_SCHEMA = [
  "topology_test_2.xml",
  "topology_test_3.xml",
  "topology_test_4.xml",
  "topology_test_5.xml",
];

ddsTest("every valid DDS test topology loads", VALID, () => {
  for (const name of VALID) {
    const topo = parseTopology(corpus.text(name), { file: name });
    assert(topo.tasks.length > 0, name);
  }
});

ddsTest("topology_test_2..5 (old or broken schema) are refused with every error", OLD_SCHEMA, () => {
  const issuesOf = (name: string) =>
    assertThrows(() => parseTopology(corpus.text(name), { file: name }), TopologyValidationError).issues;
  for (const name of OLD_SCHEMA) {
    const issues = issuesOf(name);
    assert(issues.length >= 3, `${name}: ${issues.length}`);
    assert(issues.every((i) => i.line > 0 && i.column > 0 && i.hint.length > 0 && i.file === name));
    assert(issues.some((i) => i.name === "task" && /Unknown element <task>/.test(i.message)), name);
  }
  assert(issuesOf("topology_test_5.xml").some((i) => i.name === "n" && i.message.includes("<main>")));
  assertEquals(issuesOf("topology_test_3.xml").find((i) => i.name === "minRequired")?.line, 15);
});

ddsTest("sleep_test.xml and env_test.xml give DDS's nine paths in DDS order", [
  "sleep_test.xml",
  "env_test.xml",
], async () => {
  for (
    const [file, task, coll, group] of [
      ["sleep_test.xml", "SleepTask", "SleepCollection", "SleepGroup"],
      ["env_test.xml", "EnvTask", "EnvCollection", "EnvGroup"],
    ] as const
  ) {
    const e = await expandFile(file);
    const want = sleepLike(task, coll, group);
    assertEquals(e.tasks.map((t) => t.path), want.tasks, file);
    assertEquals(e.collections.map((c) => c.path), want.collections, file);
  }
  const byPath = new Map((await expandFile("env_test.xml")).tasks.map((t) => [t.path, t]));
  const top = byPath.get("main/EnvTask_0");
  assertEquals([top?.index, top?.collectionIndex, top?.exeReachable], [0, null, false]);
  assert(top?.exe.endsWith("--taskIndex 0 --collectionIndex %collectionIndex%"), top?.exe);
  const inner = byPath.get("main/EnvGroup/EnvCollection_1/EnvTask_1");
  assertEquals([inner?.index, inner?.collectionIndex, inner?.groupName], [1, 1, "EnvGroup"]);
  assert(inner?.exe.endsWith("--taskIndex 1 --collectionIndex 1"), inner?.exe);
});

ddsTest(
  "tutorial1 gives 6 tasks with nInstances=5, and --var changes it",
  ["tutorial1_topo.xml"],
  async () => {
    const e = await expandFile("tutorial1_topo.xml");
    assertEquals(e.tasks.map((t) => t.path), [
      "main/TaskTypeTwo_0",
      ...seq("main/typeTwoGroup/TaskTypeOne", 5),
    ]);
    assertEquals(e.tasks[0]?.exe, "$DDS_LOCATION/tutorials/tutorial1/task-type-two --instances 5");
    assertEquals(e.tasks[3]?.exe, "$DDS_LOCATION/tutorials/tutorial1/task-type-one --taskIndex 2");
    assertEquals(e.tasks[1]?.properties, [
      { name: "ReplyProperty", access: "read", scope: "global" },
      { name: "TaskIndexProperty", access: "write", scope: "global" },
    ]);
    const e2 = await expandFile("tutorial1_topo.xml", { nInstances: "12" });
    assertEquals(e2.tasks.length, 13);
    assertEquals(e2.tasks[0]?.exe, "$DDS_LOCATION/tutorials/tutorial1/task-type-two --instances 12");
  },
);

ddsTest("tutorial2 and custom_cmd_test give five group tasks", [
  "tutorial2_topo.xml",
  "custom_cmd_test.xml",
], async () => {
  for (const name of ["tutorial2_topo.xml", "custom_cmd_test.xml"]) {
    const e = await expandFile(name);
    assertEquals(e.tasks.map((t) => t.path), seq("main/GroupCustomCmd/TaskCustomCmd", 5));
    assertEquals(e.collections, []);
    assertEquals(e.tasks[4]?.exeReachable, false);
  }
  const two = await loadTopology(corpus.file("tutorial2_topo.xml"), { vars: { nInstances: "2" } });
  assertEquals(two.main.groups[0]?.n, 2);
});

ddsTest("topology_scheduler_test_1 gives 3000 tasks with requirements", [
  "topology_scheduler_test_1.xml",
], async () => {
  const e = await expandFile("topology_scheduler_test_1.xml");
  assertEquals(e.tasks.map((t) => t.path), [
    ...seq("main/group1/TestTask1", 1000),
    ...seq("main/group2/TestTask2", 1000),
    ...seq("main/group3/TestTask3", 1000),
  ]);
  assertEquals(e.tasks[1500]?.requirements.map((r) => `${r.type}=${r.value}`), [
    "hostname=host2_([0-9]|[0-9][0-9])",
    "maxinstances=100",
  ]);
});

ddsTest(
  "topology_test_property_1 gives one collection of ten tasks",
  ["topology_test_property_1.xml"],
  async () => {
    const e = await expandFile("topology_test_property_1.xml");
    const coll = "main/group1/TestCollection_0";
    assertEquals(e.tasks.map((t) => t.path), inColl(coll, ["TestKeyValue0", 5], ["TestKeyValue1", 5]));
    assertEquals(e.collections.map((c) => c.path), [coll]);
    assertEquals(e.tasks[0]?.properties[0], { name: "property_1", access: "write", scope: "collection" });
    assertEquals(e.tasks[9]?.exe, "userTask1.exe");
  },
);

ddsTest("topology_test_assets gives 220 tasks and 51 collections at DDS paths", [
  "topology_test_assets.xml",
], async () => {
  const e = await expandFile("topology_test_assets.xml");
  const c1 = (p: string) => inColl(p, ["task1", 1], ["task2", 2], ["task3", 1]);
  const c2 = (p: string) => inColl(p, ["task4", 2], ["task5", 1]);
  const tasks = ["main/task1_0", ...c1("main/collection1_0")];
  const collections = ["main/collection1_0"];
  for (let g = 0; g < 10; g++) {
    tasks.push(
      `main/group1/task1_${g}`,
      ...c1(`main/group1/collection1_${g}`),
      ...c2(`main/group1/collection2_${g}`),
    );
    collections.push(`main/group1/collection1_${g}`, `main/group1/collection2_${g}`);
  }
  for (let g = 0; g < 15; g++) {
    tasks.push(`main/group2/task3_${g}`, `main/group2/task4_${g}`);
    tasks.push(...c1(`main/group2/collection1_${g}`), ...c2(`main/group2/collection2_${g}`));
    collections.push(`main/group2/collection1_${g}`, `main/group2/collection2_${g}`);
  }
  assertEquals([e.tasks.length, e.collections.length], [220, 51]);
  assertEquals(e.tasks.map((t) => t.path), tasks);
  assertEquals(e.collections.map((c) => c.path), collections);
  const t = e.tasks[0];
  assertEquals(t?.exe, "app1 -l -n");
  assertEquals([t?.env, t?.envReachable, t?.exeReachable], ["env1", false, true]);
  assertEquals(t?.requirements, [{ name: "requirement1", type: "hostname", value: ".+.gsi.de" }]);
  // DDS keeps the first declaration of a property used twice by one task.
  assertEquals(t?.properties.map((p) => `${p.name}:${p.access}`), ["property1:read", "property4:write"]);
  assertEquals(t?.triggers.map((x) => x.arg), ["5", "10"]);
  assertEquals(t?.assets.map((a) => a.visibility), ["task", "global"]);
  assert(t?.assets[0]?.value.includes(`!"§ $%& /() =?* '<> #|;`));
  assertEquals(e.collections[1]?.tasks.map((x) => x.path), c1("main/group1/collection1_0"));
  assertEquals(new Set(e.tasks.map((x) => x.id)).size, 220);
  const view = viewJson(e);
  const v = view.tasks.find((x) => x.path === "main/group1/collection1_3/task1_0");
  assertEquals([v?.name, v?.index, v?.collectionIndex, v?.exe], ["task1", 0, 3, "app1 -l -n"]);
});

ddsTest("diffs of DDS's topologies: more instances, a changed definition, fewer groups", [
  "tutorial1_topo.xml",
  "topology_test_assets.xml",
], () => {
  const t1 = corpus.text("tutorial1_topo.xml");
  const d1 = diffTopologies(expandText(t1), expandText(t1, { nInstances: "7" }));
  // TaskTypeTwo's exe embeds ${nInstances}, so its definition changed too.
  assertEquals(d1.removedTasks, ["main/TaskTypeTwo_0"]);
  assertEquals(d1.addedTasks, ["main/TaskTypeTwo_0", ...seq("main/typeTwoGroup/TaskTypeOne", 7).slice(5)]);
  const xml = corpus.text("topology_test_assets.xml");
  const a = expandText(xml);
  const d2 = diffTopologies(a, expandText(xml.replace("<exe>app4</exe>", "<exe>app4 --v2</exe>")));
  assertEquals([d2.removedTasks.length, d2.removedCollections.length], [50 + 15, 25]);
  assertEquals(d2.addedTasks, d2.removedTasks);
  assert(d2.removedCollections.every((p) => p.includes("/collection2_")));
  const d3 = diffTopologies(a, expandText(xml, { nofGroups: "9" }));
  assertEquals(d3.addedTasks, []);
  assertEquals(d3.removedCollections, ["main/group1/collection1_9", "main/group1/collection2_9"]);
  assertEquals(d3.removedTasks.length, 8);
  const text = formatDiff(d3);
  assertStringIncludes(text, "Removed tasks (8):");
  assertStringIncludes(text, "  2 x main/group1/collection1/task2");
});

ddsTest("DDS's topologies round-trip through JSON and expand identically", [
  "topology_test_assets.xml",
  "env_test.xml",
  "tutorial1_topo.xml",
], () => {
  for (const name of ["topology_test_assets.xml", "env_test.xml", "tutorial1_topo.xml"]) {
    const topo = parseTopology(corpus.text(name));
    const json = JSON.parse(JSON.stringify(topologyToJson(topo)));
    assertEquals(json.format, TOPOLOGY_JSON_FORMAT);
    const back = topologyFromJson(json);
    assertEquals(back, topo, name);
    assertEquals(expandTopology(back).tasks.map((t) => t.id), expandTopology(topo).tasks.map((t) => t.id));
  }
});

ddsTest("placement of DDS's topologies: hostname and maxinstances, what is missing, too large", [
  "topology_scheduler_test_1.xml",
  "topology_test_assets.xml",
  "topology_test_property_1.xml",
], () => {
  const agents: AgentSlots[] = [];
  for (let h = 0; h < 10; h++) {
    for (const g of [1, 2, 3]) {
      agents.push({ id: `${g}-${h}-a`, host: `host${g}_${h}`, freeSlots: 60 });
      agents.push({ id: `${g}-${h}-b`, host: `host${g}_${h}`, freeSlots: 60 });
    }
  }
  const plan = placeTasks(expandText(corpus.text("topology_scheduler_test_1.xml")), agents);
  assertEquals(plan.unplaced, []);
  const hostOf = new Map(agents.map((a) => [a.id, a.host]));
  const perHost = new Map<string, number>();
  for (const a of plan.assignments) {
    const host = hostOf.get(a.agentId) as string;
    assert(host.startsWith(`host${a.taskPath.split("/")[1]?.slice(-1)}_`), `${a.taskPath} on ${host}`);
    perHost.set(host, (perHost.get(host) ?? 0) + 1);
  }
  assert([...perHost.values()].every((n) => n <= 100));

  const assets = corpus.text("topology_test_assets.xml").replace(
    'value="${requirementVar}"',
    'value=".+\\.gsi\\.de"',
  );
  const short = placeTasks(expandText(assets), [
    { id: "a", host: "x.gsi.de", freeSlots: 4 },
    { id: "b", host: "elsewhere.org", freeSlots: 1000 },
  ]);
  assert(
    short.reasons.includes(
      'Cannot place 25 of 26 instances of collection "collection1" (4 tasks each): needs 104 slots on hosts ' +
        "matching '.+\\.gsi\\.de', 4 free",
    ),
    short.reasons.join("\n"),
  );

  const big = placeTasks(expandText(corpus.text("topology_test_property_1.xml")), [
    { id: "a", host: "h", freeSlots: 8 },
    { id: "b", host: "h", freeSlots: 8 },
  ]);
  assertEquals(big.unplaced.length, 10);
  assert(big.reasons[0]?.endsWith("the largest matching agent has 8 free"), big.reasons[0]);
});

ddsTest("tutorial1's tree, and validateFiles over valid, broken and missing DDS files", [
  "tutorial1_topo.xml",
  "sleep_test.xml",
  "env_test.xml",
  "topology_test_3.xml",
], async () => {
  assertEquals(
    formatTree(parseTopology(corpus.text("tutorial1_topo.xml"))),
    [
      "Tutorial1 (6 tasks)",
      "main",
      "├─ task TaskTypeTwo ×1  main/TaskTypeTwo_0",
      "└─ group typeTwoGroup (n=5)",
      "   └─ task TaskTypeOne ×5  main/typeTwoGroup/TaskTypeOne_0 … main/typeTwoGroup/TaskTypeOne_4",
    ].join("\n"),
  );
  const good = await validateFiles([corpus.file("sleep_test.xml")]);
  assert(good.ok && good.text.endsWith("valid, 9 tasks"), good.text);
  const bad = await validateFiles([
    corpus.file("topology_test_3.xml"),
    join(corpus.dir, "missing.xml"),
    corpus.file("env_test.xml"),
  ]);
  assertEquals([bad.ok, bad.issues.length], [false, 8]);
  assertStringIncludes(bad.text, "topology_test_3.xml:15:");
  assertStringIncludes(bad.text, 'missing.xml" does not exist');
  await assertRejects(() => loadTopology(corpus.file("topology_test_3.xml")), TopologyValidationError);
});

ddsTest("shoal topology validate, view and diff take DDS's files", [
  "sleep_test.xml",
  "tutorial1_topo.xml",
  "topology_test_3.xml",
  "topology_scheduler_test_1.xml",
], async () => {
  const ok = await runShoal([
    "topology",
    "validate",
    corpus.file("sleep_test.xml"),
    corpus.file("tutorial1_topo.xml"),
  ]);
  assertEquals(ok.code, 0, ok.stderr);
  const bad = await runShoal(["topology", "validate", "--json", corpus.file("topology_test_3.xml")]);
  assertEquals(bad.code, 1);
  const issues = (JSON.parse(bad.stdout) as { issues: TopologyIssue[] }).issues;
  assert(issues.length > 1 && issues.every((i) => i.line > 0 && i.column > 0));
  const view = await runShoal([
    "topology",
    "view",
    "--json",
    corpus.file("tutorial1_topo.xml"),
    "--var",
    "nInstances=3",
  ]);
  assertEquals(view.code, 0, view.stderr);
  const paths = (JSON.parse(view.stdout) as { tasks: { path: string }[] }).tasks.map((t) => t.path);
  assertEquals(paths, ["main/TaskTypeTwo_0", ...seq("main/typeTwoGroup/TaskTypeOne", 3)]);
  const diff = await runShoal([
    "topology",
    "diff",
    "--json",
    corpus.file("sleep_test.xml"),
    corpus.file("sleep_test.xml"),
  ]);
  assertEquals(JSON.parse(diff.stdout), {
    removedTasks: [],
    addedTasks: [],
    removedCollections: [],
    addedCollections: [],
  });
  const large = await runShoal(["topology", "view", "--json", corpus.file("topology_scheduler_test_1.xml")]);
  assertEquals((JSON.parse(large.stdout) as { tasks: unknown[] }).tasks.length, 3000);
});

ddsTest("DDS's sleep_test.xml runs, and stop leaves no process of it", ["sleep_test.xml"], async () => {
  await using mesh = await startMesh({ agents: 2, slots: 6 });
  const act = await mesh.run(["topology", "activate", corpus.file("sleep_test.xml"), "--json"]);
  assertEquals(act.code, 0, act.stderr);
  assertEquals((JSON.parse(act.stdout) as { started: number }).started, 9);
  const tasks = await ps(mesh);
  assertEquals(
    tasks.map((t) => t.path).sort(),
    sleepLike("SleepTask", "SleepCollection", "SleepGroup").tasks.sort(),
  );
  assert(tasks.every((t) => t.state === "running" && t.pid && isRunning(t.pid)));
  const stop = await mesh.run(["topology", "stop", "--json"]);
  assertEquals(stop.code, 0, stop.stderr);
  assertEquals((JSON.parse(stop.stdout) as { stopped: number }).stopped, 9);
  for (const t of tasks) assert(!isRunning(t.pid!), `task ${t.path} (${t.pid}) survived stop`);
  assertEquals(await ps(mesh), []);
});

ddsTest(
  "DDS's env_test.xml runs with DDS's environment, the executable shipped",
  ["env_test.xml"],
  async () => {
    await using mesh = await startMesh({ agents: 2, slots: 5 });
    // $DDS_LOCATION/tests/task-test_env, as DDS installs it, but only on the commander's machine.
    const location = join(mesh.home.dir, "dds");
    mkdirSync(join(location, "tests"), { recursive: true });
    const exe = join(location, "tests", "task-test_env");
    Deno.writeTextFileSync(exe, `#!/bin/sh\necho "ARGS $*"\nenv | grep '^DDS_' | sort\n`);
    chmodSync(exe, 0o755);
    const act = await mesh.home.run(
      ["topology", "activate", corpus.file("env_test.xml"), "--json", "--session", mesh.session],
      { env: { DDS_LOCATION: location } },
    );
    assertEquals(act.code, 0, act.stderr);
    const tasks = await waitFor(async () => {
      const t = await ps(mesh);
      return t.every((x) => x.state === "exited") ? t : undefined;
    }, { what: "tasks to finish" });
    assertEquals(tasks.length, 9);
    assert(tasks.every((t) => t.exitCode === 0), JSON.stringify(tasks));
    const session = JSON.parse(
      readFileSync(join(mesh.home.dir, "sessions", mesh.session, "session.json"), "utf8"),
    );
    const out = (await mesh.run(["logs", "--no-prefix", "main/EnvGroup/EnvCollection_1/EnvTask_1$"])).stdout;
    const task = tasks.find((t) => t.path === "main/EnvGroup/EnvCollection_1/EnvTask_1")!;
    assertStringIncludes(out, "ARGS --taskIndex 1 --collectionIndex 1\n");
    for (
      const line of [
        "DDS_TASK_PATH=main/EnvGroup/EnvCollection_1/EnvTask_1",
        "DDS_TASK_INDEX=1",
        "DDS_TASK_NAME=EnvTask",
        `DDS_TASK_ID=${task.id}`,
        "DDS_COLLECTION_INDEX=1",
        "DDS_COLLECTION_NAME=EnvCollection",
        "DDS_GROUP_NAME=EnvGroup",
        `DDS_SESSION_ID=${session.id}`,
      ]
    ) assertStringIncludes(out, `${line}\n`);
    assertStringIncludes(out, "DDS_SLOT_ID=");
  },
);

if (absent.size) {
  const verb = corpus.required ? "cannot run" : "skipped";
  const how = "set SHOAL_DDS_CORPUS to a folder of DDS's topology files or to a DDS checkout";
  console.warn(
    absent.size === wanted.size
      ? `dds conformance tests: ${verb}: no DDS corpus at ${corpus.dir} (${how})`
      : `dds conformance tests: ${skipped} of ${registered} ${verb}: ${
        [...absent].join(", ")
      } not in ${corpus.dir}`,
  );
}

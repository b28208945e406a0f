import {
  assertEquals,
  assertNotEquals,
  assertOk as assert,
  assertThrows,
  ddsFile,
  ddsText,
  seq,
} from "./_testdata.ts";
import { TopologyValidationError } from "./errors.ts";
import { expandTopology } from "./expand.ts";
import { loadTopology } from "./load.ts";
import { parseTopology } from "./parse.ts";

async function expandFile(name: string, vars?: Record<string, string>) {
  return expandTopology(await loadTopology(ddsFile(name), { vars }));
}

/** Paths of a collection instance's tasks declared `[name, count]`. */
function inColl(coll: string, ...tasks: [string, number][]): string[] {
  return tasks.flatMap(([name, n]) => seq(`${coll}/${name}`, n));
}

/** What DDS's Sleep/Env test topologies expand to. */
function sleepLike(task: string, coll: string, group: string): { tasks: string[]; collections: string[] } {
  const tasks = [`main/${task}_0`, ...inColl(`main/${coll}_0`, [task, 2])];
  for (let g = 0; g < 2; g++) {
    tasks.push(`main/${group}/${task}_${g}`, ...inColl(`main/${group}/${coll}_${g}`, [task, 2]));
  }
  return { tasks, collections: [`main/${coll}_0`, `main/${group}/${coll}_0`, `main/${group}/${coll}_1`] };
}

Deno.test("expand: sleep_test.xml gives DDS's nine paths in DDS order", async () => {
  const e = await expandFile("sleep_test.xml");
  const want = sleepLike("SleepTask", "SleepCollection", "SleepGroup");
  assertEquals(e.tasks.map((t) => t.path), want.tasks);
  assertEquals(e.collections.map((c) => c.path), want.collections);
});

Deno.test("expand: env_test.xml gives task and collection indices and substitutes them in exe", async () => {
  const e = await expandFile("env_test.xml");
  const want = sleepLike("EnvTask", "EnvCollection", "EnvGroup");
  assertEquals(e.tasks.map((t) => t.path), want.tasks);
  assertEquals(e.collections.map((c) => c.path), want.collections);
  const byPath = new Map(e.tasks.map((t) => [t.path, t]));
  const top = byPath.get("main/EnvTask_0");
  assertEquals([top?.index, top?.collectionIndex], [0, null]);
  assert(top?.exe.endsWith("--taskIndex 0 --collectionIndex %collectionIndex%"), top?.exe);
  const inner = byPath.get("main/EnvGroup/EnvCollection_1/EnvTask_1");
  assertEquals([inner?.index, inner?.collectionIndex, inner?.groupName], [1, 1, "EnvGroup"]);
  assert(inner?.exe.endsWith("--taskIndex 1 --collectionIndex 1"), inner?.exe);
  assertEquals(byPath.get("main/EnvGroup/EnvTask_1")?.index, 1);
});

Deno.test("expand: tutorial1 with nInstances=5 gives 6 tasks, and --var changes it", async () => {
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
});

Deno.test("expand: tutorial2 and custom_cmd_test give five group tasks", async () => {
  for (const name of ["tutorial2_topo.xml", "custom_cmd_test.xml"]) {
    const e = await expandFile(name);
    assertEquals(e.tasks.map((t) => t.path), seq("main/GroupCustomCmd/TaskCustomCmd", 5));
    assertEquals(e.collections, []);
    assertEquals(e.tasks[4]?.exeReachable, false);
  }
});

Deno.test("expand: topology_scheduler_test_1 gives 3000 tasks with requirements", async () => {
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

Deno.test("expand: topology_test_property_1 gives one collection of ten tasks", async () => {
  const e = await expandFile("topology_test_property_1.xml");
  const coll = "main/group1/TestCollection_0";
  assertEquals(e.tasks.map((t) => t.path), inColl(coll, ["TestKeyValue0", 5], ["TestKeyValue1", 5]));
  assertEquals(e.collections.map((c) => c.path), [coll]);
  assertEquals(e.tasks[0]?.properties[0], { name: "property_1", access: "write", scope: "collection" });
  assertEquals(e.tasks[9]?.exe, "userTask1.exe");
});

Deno.test("expand: topology_test_assets gives 220 tasks and 51 collections at DDS paths", async () => {
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
  assertEquals(e.tasks.length, 220);
  assertEquals(e.collections.length, 51);
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
});

Deno.test("expand: IDs are stable, depend on path and definition, and are unsigned 64-bit decimals", () => {
  const xml = ddsText("sleep_test.xml");
  const a = expandTopology(parseTopology(xml));
  const b = expandTopology(parseTopology(xml));
  assertEquals(a.tasks.map((t) => t.id), b.tasks.map((t) => t.id));
  for (const t of a.tasks) assert(/^\d{1,20}$/.test(t.id) && BigInt(t.id) < 2n ** 64n, t.id);
  const c = expandTopology(parseTopology(xml.replace("sleep 100", "sleep 200")));
  assertNotEquals(a.tasks[0]?.id, c.tasks[0]?.id);
  assertEquals(a.tasks[0]?.path, c.tasks[0]?.path);
});

Deno.test("expand: refuses a model with unresolved references", () => {
  const topo = parseTopology(ddsText("sleep_test.xml"));
  topo.main.tasks.push("Nope");
  const err = assertThrows(() => expandTopology(topo), TopologyValidationError);
  assertEquals(err.issues[0]?.name, "Nope");
});

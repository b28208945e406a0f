import { assertEquals, ddsText } from "./_testdata.ts";
import { diffTopologies } from "./diff.ts";
import { expandTopology } from "./expand.ts";
import { parseTopology } from "./parse.ts";

const expand = (xml: string, vars?: Record<string, string>) => expandTopology(parseTopology(xml, { vars }));

Deno.test("diff: identical topologies have no difference", () => {
  const a = expand(ddsText("topology_test_assets.xml"));
  assertEquals(diffTopologies(a, a), {
    removedTasks: [],
    addedTasks: [],
    removedCollections: [],
    addedCollections: [],
  });
});

Deno.test("diff: a larger group n adds only the new instances", () => {
  const xml = ddsText("tutorial1_topo.xml");
  const d = diffTopologies(expand(xml), expand(xml, { nInstances: "7" }));
  // TaskTypeTwo's exe embeds ${nInstances}, so its definition changed too.
  assertEquals(d.removedTasks, ["main/TaskTypeTwo_0"]);
  assertEquals(d.addedTasks, [
    "main/TaskTypeTwo_0",
    "main/typeTwoGroup/TaskTypeOne_5",
    "main/typeTwoGroup/TaskTypeOne_6",
  ]);
});

Deno.test("diff: a changed task definition replaces its instances and enclosing collections", () => {
  const xml = ddsText("topology_test_assets.xml");
  const d = diffTopologies(expand(xml), expand(xml.replace("<exe>app4</exe>", "<exe>app4 --v2</exe>")));
  assertEquals(d.removedTasks.length, 50 + 15);
  assertEquals(d.addedTasks, d.removedTasks);
  assertEquals(d.removedCollections.length, 25);
  assertEquals(d.removedCollections.every((p) => p.includes("/collection2_")), true);
  assertEquals(d.addedTasks.includes("main/group2/task4_3"), true);
});

Deno.test("diff: fewer group instances remove the tail", () => {
  const xml = ddsText("topology_test_assets.xml");
  const d = diffTopologies(expand(xml), expand(xml, { nofGroups: "9" }));
  assertEquals(d.addedTasks, []);
  assertEquals(d.removedCollections, ["main/group1/collection1_9", "main/group1/collection2_9"]);
  assertEquals(d.removedTasks.length, 8);
});

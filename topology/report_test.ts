import { assertEquals, assertOk as assert, ddsFile, ddsText } from "./_testdata.ts";
import { diffTopologies } from "./diff.ts";
import { expandTopology } from "./expand.ts";
import { parseTopology } from "./parse.ts";
import { diffJson, formatDiff, formatIssues, formatTree, validateFiles, viewJson } from "./report.ts";

Deno.test("report: view --json lists runtime tasks and collections with their paths", () => {
  const view = viewJson(expandTopology(parseTopology(ddsText("topology_test_assets.xml"))));
  assertEquals(view.tasks.length, 220);
  const t = view.tasks.find((x) => x.path === "main/group1/collection1_3/task1_0");
  assertEquals([t?.name, t?.index, t?.collectionIndex, t?.exe], ["task1", 0, 3, "app1 -l -n"]);
  assert(/^\d+$/.test(t?.id ?? ""));
  assertEquals(view.collections.some((c) => c.path === "main/group1/collection1_0"), true);
  assertEquals(view.collections[0]?.tasks.length, 4);
});

Deno.test("report: the tree shows groups, multiplicities and path ranges", () => {
  const tree = formatTree(parseTopology(ddsText("tutorial1_topo.xml")));
  assertEquals(
    tree,
    [
      "Tutorial1 (6 tasks)",
      "main",
      "├─ task TaskTypeTwo ×1  main/TaskTypeTwo_0",
      "└─ group typeTwoGroup (n=5)",
      "   └─ task TaskTypeOne ×5  main/typeTwoGroup/TaskTypeOne_0 … main/typeTwoGroup/TaskTypeOne_4",
    ].join("\n"),
  );
});

Deno.test("report: diff as JSON and as DDS-style text", () => {
  const xml = ddsText("topology_test_assets.xml");
  const d = diffTopologies(
    expandTopology(parseTopology(xml)),
    expandTopology(parseTopology(xml, { vars: { nofGroups: "9" } })),
  );
  assertEquals(Object.keys(diffJson(d)), [
    "removedTasks",
    "addedTasks",
    "removedCollections",
    "addedCollections",
  ]);
  const text = formatDiff(d);
  assert(text.includes("Removed tasks (8):"), text);
  assert(text.includes("  1 x main/group1/collection1/task1"), text);
  assert(text.includes("  2 x main/group1/collection1/task2"), text);
  assertEquals(
    formatDiff({ removedTasks: [], addedTasks: [], removedCollections: [], addedCollections: [] }),
    "No changes",
  );
});

Deno.test("report: validateFiles lists every error of every file and fails on any", async () => {
  const good = await validateFiles([ddsFile("sleep_test.xml")]);
  assertEquals(good.ok, true);
  assert(good.text.endsWith("valid, 9 tasks"));
  const bad = await validateFiles([
    ddsFile("topology_test_3.xml"),
    ddsFile("missing.xml"),
    ddsFile("env_test.xml"),
  ]);
  assertEquals(bad.ok, false);
  assertEquals(bad.issues.length, 8);
  assert(bad.text.includes("topology_test_3.xml:15:"), bad.text);
  assert(bad.text.includes('missing.xml" does not exist'), bad.text);
  assert(formatIssues(bad.issues).includes("  hint: "));
});

import { assertEquals, assertOk as assert, testdataFile, testdataText } from "./_testdata.ts";
import { diffTopologies } from "./diff.ts";
import { expandTopology } from "./expand.ts";
import { parseTopology } from "./parse.ts";
import { diffJson, formatDiff, formatIssues, formatTree, validateFiles, viewJson } from "./report.ts";

Deno.test("report: view --json lists runtime tasks and collections with their paths", () => {
  const view = viewJson(expandTopology(parseTopology(testdataText("survey.xml"))));
  assertEquals([view.tasks.length, view.collections.length], [46, 11]);
  const t = view.tasks.find((x) => x.path === "main/Field/Station_3/Probe_1");
  assertEquals([t?.name, t?.index, t?.collectionIndex, t?.exe], [
    "Probe",
    1,
    3,
    "probe --mode deep --station 3 --probe 1",
  ]);
  assert(/^\d+$/.test(t?.id ?? ""));
  assertEquals(view.collections.map((c) => c.path).slice(0, 3), [
    "main/Vault_0",
    "main/Field/Station_0",
    "main/Field/Station_1",
  ]);
  assertEquals(view.collections[1]?.tasks.length, 4);
});

Deno.test("report: the tree shows groups, collections, multiplicities and path ranges", () => {
  assertEquals(
    formatTree(parseTopology(testdataText("chorus.xml"))),
    [
      "Chorus (5 tasks)",
      "main",
      "├─ task Conductor ×1  main/Conductor_0",
      "└─ group Voices (n=4)",
      "   └─ task Singer ×4  main/Voices/Singer_0 … main/Voices/Singer_3",
    ].join("\n"),
  );
  assertEquals(
    formatTree(parseTopology(testdataText("beacon.xml"))),
    [
      "Beacon (9 tasks)",
      "main",
      "├─ task Lamp ×1  main/Lamp_0",
      "└─ group Tower (n=2)",
      "   ├─ task Lamp ×2  main/Tower/Lamp_0 … main/Tower/Lamp_1",
      "   └─ collection Ring ×2  main/Tower/Ring_0 … main/Tower/Ring_1",
      "      └─ task Lamp ×3",
    ].join("\n"),
  );
});

Deno.test("report: diff as JSON and as DDS-style text", () => {
  const xml = testdataText("survey.xml");
  const d = diffTopologies(
    expandTopology(parseTopology(xml)),
    expandTopology(parseTopology(xml, { vars: { stations: "4" } })),
  );
  assertEquals(Object.keys(diffJson(d)), [
    "removedTasks",
    "addedTasks",
    "removedCollections",
    "addedCollections",
  ]);
  assertEquals(
    formatDiff(d),
    [
      "Removed tasks (10):",
      "  2 x main/Field/Reporter",
      "  2 x main/Field/Station/Calibrator",
      "  6 x main/Field/Station/Probe",
      "Removed collections (2):",
      "  2 x main/Field/Station",
    ].join("\n"),
  );
  assertEquals(
    formatDiff({ removedTasks: [], addedTasks: [], removedCollections: [], addedCollections: [] }),
    "No changes",
  );
});

Deno.test("report: validateFiles lists every error of every file and fails on any", async () => {
  const good = await validateFiles([testdataFile("ripple.xml")]);
  assertEquals(good.ok, true);
  assert(good.text.endsWith("valid, 16 tasks"), good.text);
  const bad = await validateFiles([
    testdataFile("legacy_ports.xml"),
    testdataFile("missing.xml"),
    testdataFile("beacon.xml"),
  ]);
  assertEquals(bad.ok, false);
  assertEquals(bad.issues.length, 7 + 1);
  assert(bad.text.includes("legacy_ports.xml:18:5: "), bad.text);
  assert(bad.text.includes('missing.xml" does not exist'), bad.text);
  assert(bad.text.includes("beacon.xml: valid, 9 tasks"), bad.text);
  assert(formatIssues(bad.issues).includes("  hint: "));
});

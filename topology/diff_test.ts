import { assertEquals, seq, testdataText } from "./_testdata.ts";
import { diffTopologies } from "./diff.ts";
import { expandTopology } from "./expand.ts";
import { parseTopology } from "./parse.ts";

const expand = (xml: string, vars?: Record<string, string>) => expandTopology(parseTopology(xml, { vars }));

Deno.test("diff: identical topologies have no difference", () => {
  const a = expand(testdataText("survey.xml"));
  assertEquals(diffTopologies(a, a), {
    removedTasks: [],
    addedTasks: [],
    removedCollections: [],
    addedCollections: [],
  });
});

Deno.test("diff: a larger group n adds only the new instances", () => {
  const xml = testdataText("chorus.xml");
  const d = diffTopologies(expand(xml), expand(xml, { voices: "6" }));
  // The conductor's exe embeds ${voices}, so its definition changed too.
  assertEquals(d, {
    removedTasks: ["main/Conductor_0"],
    addedTasks: ["main/Conductor_0", "main/Voices/Singer_4", "main/Voices/Singer_5"],
    removedCollections: [],
    addedCollections: [],
  });
});

Deno.test("diff: a changed task definition replaces its instances and enclosing collections, nothing else", () => {
  const xml = testdataText("survey.xml");
  const d = diffTopologies(
    expand(xml),
    expand(xml.replace("<exe>calibrate</exe>", "<exe>calibrate --v2</exe>")),
  );
  const stations = [...seq("main/Field/Station", 6), ...seq("main/Depot/Station", 2)];
  assertEquals(d, {
    removedTasks: stations.map((s) => `${s}/Calibrator_0`),
    addedTasks: stations.map((s) => `${s}/Calibrator_0`),
    removedCollections: stations,
    addedCollections: stations,
  });
});

Deno.test("diff: fewer group instances remove the tail", () => {
  const xml = testdataText("survey.xml");
  const d = diffTopologies(expand(xml), expand(xml, { stations: "5" }));
  assertEquals(d, {
    removedTasks: [
      "main/Field/Reporter_5",
      "main/Field/Station_5/Calibrator_0",
      "main/Field/Station_5/Probe_0",
      "main/Field/Station_5/Probe_1",
      "main/Field/Station_5/Probe_2",
    ],
    addedTasks: [],
    removedCollections: ["main/Field/Station_5"],
    addedCollections: [],
  });
});

import { assertEquals, assertOk as assert, assertThrows, testdataText } from "./_testdata.ts";
import { TopologyValidationError } from "./errors.ts";
import { expandTopology } from "./expand.ts";
import { TOPOLOGY_JSON_FORMAT, topologyFromJson, topologyToJson } from "./json.ts";
import { parseTopology } from "./parse.ts";
import { viewJson } from "./report.ts";

Deno.test("json: every kind of declaration round-trips through JSON text and expands identically", () => {
  for (const name of ["survey.xml", "beacon.xml", "chorus.xml", "fleet.xml"]) {
    const topo = parseTopology(testdataText(name));
    const json = JSON.parse(JSON.stringify(topologyToJson(topo)));
    assertEquals(json.format, TOPOLOGY_JSON_FORMAT);
    const back = topologyFromJson(json);
    assertEquals(back, topo);
    assertEquals(expandTopology(back).tasks.map((t) => t.id), expandTopology(topo).tasks.map((t) => t.id));
  }
});

Deno.test("json: the view --json output reads back as the same topology", () => {
  const topo = parseTopology(testdataText("ripple.xml"));
  const view = JSON.parse(JSON.stringify(viewJson(expandTopology(topo))));
  assertEquals(topologyFromJson(view), topo);
});

Deno.test("json: a minimal hand-written topology uses defaults", () => {
  const topo = topologyFromJson({
    name: "gen",
    tasks: [{ name: "w", exe: "worker %taskIndex%" }],
    main: { groups: [{ name: "g", n: 3, tasks: ["w"] }] },
  });
  const e = expandTopology(topo);
  assertEquals(e.tasks.map((t) => t.exe), ["worker 0", "worker 1", "worker 2"]);
  assertEquals(e.tasks[0]?.exeReachable, true);
});

Deno.test("json: every shape and reference problem is reported with its JSON path", () => {
  const err = assertThrows(() =>
    topologyFromJson({
      name: "bad name",
      tasks: [{ name: "w", exe: "", properties: [{ name: "p", access: "sometimes" }] }],
      collections: [{ name: "c", tasks: [{ name: "w", n: 0 }] }],
      main: { tasks: ["nope"], groups: [{ name: "g", n: 1, groups: [] }] },
    }), TopologyValidationError);
  const names = err.issues.map((i) => i.name);
  for (
    const want of ["name", "tasks[0].exe", "tasks[0].properties[0].access", "collections[0].tasks[0].n"]
  ) {
    assert(names.includes(want), `${want} in ${names.join(", ")}`);
  }
  assert(names.includes("main.groups[0].groups"));
  assert(names.includes("nope") && names.includes("p"));
});

import {
  assertEquals,
  assertNotEquals,
  assertOk as assert,
  assertThrows,
  seq,
  testdataFile,
  testdataText,
} from "./_testdata.ts";
import { TopologyValidationError } from "./errors.ts";
import { expandTopology } from "./expand.ts";
import { loadTopology } from "./load.ts";
import { parseTopology } from "./parse.ts";

async function expandFile(name: string, vars?: Record<string, string>) {
  return expandTopology(await loadTopology(testdataFile(name), { vars }));
}

/** Paths of a collection instance's tasks declared `[name, count]`. */
function inColl(coll: string, ...tasks: [string, number][]): string[] {
  return tasks.flatMap(([name, n]) => seq(`${coll}/${name}`, n));
}

Deno.test("expand: ripple.xml gives main's task, main's collection, then each group instance, in DDS order", async () => {
  const e = await expandFile("ripple.xml");
  assertEquals(e.tasks.map((t) => t.path), [
    "main/Crest_0",
    "main/Swell_0/Crest_0",
    "main/Swell_0/Wave_0",
    "main/Swell_0/Wave_1",
    "main/Surf/Wave_0",
    "main/Surf/Swell_0/Crest_0",
    "main/Surf/Swell_0/Wave_0",
    "main/Surf/Swell_0/Wave_1",
    "main/Surf/Wave_1",
    "main/Surf/Swell_1/Crest_0",
    "main/Surf/Swell_1/Wave_0",
    "main/Surf/Swell_1/Wave_1",
    "main/Surf/Wave_2",
    "main/Surf/Swell_2/Crest_0",
    "main/Surf/Swell_2/Wave_0",
    "main/Surf/Swell_2/Wave_1",
  ]);
  assertEquals(e.collections.map((c) => c.path), [
    "main/Swell_0",
    "main/Surf/Swell_0",
    "main/Surf/Swell_1",
    "main/Surf/Swell_2",
  ]);
  const wave = e.tasks.find((t) => t.path === "main/Surf/Swell_2/Wave_1");
  assertEquals([wave?.index, wave?.collectionIndex, wave?.collectionName, wave?.groupName], [
    1,
    2,
    "Swell",
    "Surf",
  ]);
  assertEquals(e.tasks.find((t) => t.path === "main/Crest_0")?.groupName, "main");
});

Deno.test("expand: beacon.xml substitutes %taskIndex% and %collectionIndex% and keeps exe and env unreachable", async () => {
  const e = await expandFile("beacon.xml");
  assertEquals(
    e.tasks.map((t) => [t.path, t.index, t.collectionIndex, t.exe.replace("$BEACON_HOME/lamp ", "")]),
    [
      ["main/Lamp_0", 0, null, "--slot 0 --ring %collectionIndex%"],
      ["main/Tower/Lamp_0", 0, null, "--slot 0 --ring %collectionIndex%"],
      ["main/Tower/Ring_0/Lamp_0", 0, 0, "--slot 0 --ring 0"],
      ["main/Tower/Ring_0/Lamp_1", 1, 0, "--slot 1 --ring 0"],
      ["main/Tower/Ring_0/Lamp_2", 2, 0, "--slot 2 --ring 0"],
      ["main/Tower/Lamp_1", 1, null, "--slot 1 --ring %collectionIndex%"],
      ["main/Tower/Ring_1/Lamp_0", 0, 1, "--slot 0 --ring 1"],
      ["main/Tower/Ring_1/Lamp_1", 1, 1, "--slot 1 --ring 1"],
      ["main/Tower/Ring_1/Lamp_2", 2, 1, "--slot 2 --ring 1"],
    ],
  );
  assertEquals(e.collections.map((c) => c.path), ["main/Tower/Ring_0", "main/Tower/Ring_1"]);
  for (const t of e.tasks) {
    assertEquals([t.exeReachable, t.env, t.envReachable], [false, "$BEACON_HOME/lamp.env", false], t.path);
  }
});

Deno.test("expand: chorus.xml's ${voices} sets both the group's n and the conductor's exe, and --var changes both", async () => {
  const e = await expandFile("chorus.xml");
  assertEquals(e.tasks.map((t) => t.path), ["main/Conductor_0", ...seq("main/Voices/Singer", 4)]);
  assertEquals(e.tasks[0]?.exe, "$CHORUS_HOME/conductor --expect 4");
  assertEquals(e.tasks[3]?.exe, "$CHORUS_HOME/singer --voice 2");
  // Sorted by name, as DDS's std::map keeps them; an undeclared scope is global.
  assertEquals(e.tasks[1]?.properties, [
    { name: "Cue", access: "read", scope: "global" },
    { name: "Pitch", access: "write", scope: "global" },
  ]);
  const e2 = await expandFile("chorus.xml", { voices: "11" });
  assertEquals(e2.tasks.length, 12);
  assertEquals(e2.tasks[0]?.exe, "$CHORUS_HOME/conductor --expect 11");
  assertEquals(e2.tasks[11]?.path, "main/Voices/Singer_10");
});

Deno.test("expand: fleet.xml gives three racks of probes, each with its hostname and maxinstances requirement", async () => {
  const e = await expandFile("fleet.xml");
  assertEquals(e.tasks.map((t) => t.path), [
    ...seq("main/RackA/ProbeA", 24),
    ...seq("main/RackB/ProbeB", 24),
    ...seq("main/RackC/ProbeC", 24),
  ]);
  assertEquals(e.tasks[30]?.requirements.map((r) => `${r.type}=${r.value}`), [
    "hostname=^rack-b-[0-9]+$",
    "maxinstances=4",
  ]);
  // Declaration order within a task is kept.
  assertEquals(e.tasks[71]?.requirements.map((r) => r.name), ["fewPerHost", "onRackC"]);
  assertEquals(e.tasks[71]?.exe, "probe --rack c --unit 23");
  assertEquals((await expandFile("fleet.xml", { perRack: "1000" })).tasks.length, 3000);
});

Deno.test("expand: survey.xml gives 46 tasks and 11 collections with every kind of declaration resolved", async () => {
  const e = await expandFile("survey.xml");
  const station = (p: string) => inColl(p, ["Calibrator", 1], ["Probe", 3]);
  const vault = (p: string) => inColl(p, ["Archiver", 2]);
  const tasks = ["main/Reporter_0", "main/Trainer_0", ...vault("main/Vault_0")];
  const collections = ["main/Vault_0"];
  for (let g = 0; g < 6; g++) {
    tasks.push(`main/Field/Reporter_${g}`, ...station(`main/Field/Station_${g}`));
    collections.push(`main/Field/Station_${g}`);
  }
  for (let g = 0; g < 2; g++) {
    tasks.push(...station(`main/Depot/Station_${g}`), ...vault(`main/Depot/Vault_${g}`));
    collections.push(`main/Depot/Station_${g}`, `main/Depot/Vault_${g}`);
  }
  assertEquals(e.tasks.length, 46);
  assertEquals(e.collections.length, 11);
  assertEquals(e.tasks.map((t) => t.path), tasks);
  assertEquals(e.collections.map((c) => c.path), collections);
  assertEquals(new Set(e.tasks.map((x) => x.id)).size, 46);
  const get = (path: string) => {
    const t = e.tasks.find((x) => x.path === path);
    assert(t, path);
    return t;
  };

  const probe = get("main/Field/Station_4/Probe_2");
  assertEquals(probe.exe, "probe --mode deep --station 4 --probe 2");
  assertEquals([probe.exeReachable, probe.env, probe.envReachable], [true, "probe.env", false]);
  assertEquals(probe.requirements, [{ name: "inLab", type: "hostname", value: "^node-[0-9]+\\.lab$" }]);
  // Reading is declared write, then readwrite: the first declaration wins, as in DDS.
  assertEquals(probe.properties, [
    { name: "Calibration", access: "read", scope: "collection" },
    { name: "Reading", access: "write", scope: "collection" },
  ]);
  assertEquals(probe.triggers, [
    { name: "retryMany", condition: "TaskCrashed", action: "RestartTask", arg: "7" },
    { name: "retryFew", condition: "TaskCrashed", action: "RestartTask", arg: "3" },
  ]);
  assertEquals(probe.assets.map((a) => `${a.name}:${a.type}:${a.visibility}`), [
    "siteConfig:inline:global",
    "fieldNotes:inline:task",
  ]);
  assertEquals(
    probe.assets[1]?.value,
    "Notes: \"quoted\" & <angled> 'single' § ü ½ {braces} %taskIndex% $HOME `tick` \\back",
  );
  assert(probe.assets[0]?.value.includes("threshold=0.75"), probe.assets[0]?.value);

  assertEquals(get("main/Depot/Station_1/Calibrator_0").properties, [
    { name: "Calibration", access: "readwrite", scope: "collection" },
    { name: "Reading", access: "read", scope: "collection" },
  ]);
  const reporter = get("main/Field/Reporter_5");
  assertEquals([reporter.exe, reporter.exeReachable], ["report --station %collectionIndex% --nth 5", false]);
  assertEquals(reporter.requirements, [{ name: "labNodes", type: "wnname", value: "wn-lab-[0-9]+" }]);
  assertEquals(reporter.properties.map((p) => `${p.name}:${p.access}:${p.scope}`), [
    "Alarm:write:global",
    "Summary:read:global",
  ]);
  assertEquals(reporter.triggers.map((t) => t.arg), ["3"]);
  assertEquals(get("main/Trainer_0").requirements.map((r) => `${r.type}=${r.value}`), [
    "gpu=1",
    "custom=zone=eu-.*",
  ]);
  assertEquals(get("main/Depot/Vault_1/Archiver_1").requirements.map((r) => `${r.type}=${r.value}`), [
    "groupname=^lab$",
    "maxinstances=2",
  ]);

  const fieldStation = e.collections.find((c) => c.path === "main/Field/Station_3");
  assertEquals([fieldStation?.name, fieldStation?.index, fieldStation?.groupName], ["Station", 3, "Field"]);
  assertEquals(fieldStation?.requirements.map((r) => r.name), ["inLab"]);
  assertEquals(fieldStation?.tasks.map((t) => t.path), station("main/Field/Station_3"));
  assertEquals(e.collections.find((c) => c.path === "main/Depot/Vault_0")?.requirements, []);
});

Deno.test("expand: IDs are stable, depend on path and definition, and are unsigned 64-bit decimals", () => {
  const xml = testdataText("ripple.xml");
  const a = expandTopology(parseTopology(xml));
  const b = expandTopology(parseTopology(xml));
  assertEquals(a.tasks.map((t) => t.id), b.tasks.map((t) => t.id));
  for (const t of a.tasks) assert(/^\d{1,20}$/.test(t.id) && BigInt(t.id) < 2n ** 64n, t.id);
  const c = expandTopology(parseTopology(xml.replace("sleep 240", "sleep 250")));
  assertNotEquals(a.tasks[0]?.id, c.tasks[0]?.id);
  assertEquals(a.tasks[0]?.path, c.tasks[0]?.path);
  // Wave's definition is unchanged, so its IDs are too.
  assertEquals(a.tasks[2]?.id, c.tasks[2]?.id);
});

Deno.test("expand: refuses a model with unresolved references", () => {
  const topo = parseTopology(testdataText("ripple.xml"));
  topo.main.tasks.push("Nope");
  const err = assertThrows(() => expandTopology(topo), TopologyValidationError);
  assertEquals(err.issues[0]?.name, "Nope");
});

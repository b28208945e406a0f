import { assertEquals, assertOk as assert, ddsText } from "./_testdata.ts";
import { expandTopology } from "./expand.ts";
import { parseTopology } from "./parse.ts";
import { placeTasks } from "./placement.ts";
import type { AgentSlots } from "./types.ts";

const expand = (xml: string) => expandTopology(parseTopology(xml));

Deno.test("placement: whole collections go to one agent, before plain tasks", () => {
  const e = expand(ddsText("sleep_test.xml"));
  const agents: AgentSlots[] = [
    { id: "a", host: "h1", freeSlots: 3 },
    { id: "b", host: "h2", freeSlots: 3 },
    { id: "c", host: "h3", freeSlots: 3 },
  ];
  const plan = placeTasks(e, agents);
  assertEquals(plan.unplaced, []);
  assertEquals(plan.assignments.length, 9);
  const agentOf = new Map(plan.assignments.map((a) => [a.taskPath, a.agentId]));
  for (const c of e.collections) {
    assertEquals(new Set(c.tasks.map((t) => agentOf.get(t.path))).size, 1, c.path);
  }
  assertEquals(agentOf.get("main/SleepCollection_0/SleepTask_0"), "a");
  assertEquals(agentOf.get("main/SleepTask_0"), "a");
});

Deno.test("placement: hostname regex and maxinstances per host are honoured", () => {
  const e = expand(ddsText("topology_scheduler_test_1.xml"));
  const agents: AgentSlots[] = [];
  for (let h = 0; h < 10; h++) {
    for (const g of [1, 2, 3]) {
      agents.push({ id: `${g}-${h}-a`, host: `host${g}_${h}`, freeSlots: 60 });
      agents.push({ id: `${g}-${h}-b`, host: `host${g}_${h}`, freeSlots: 60 });
    }
  }
  const plan = placeTasks(e, agents);
  assertEquals(plan.unplaced, []);
  const perHost = new Map<string, number>();
  const hostOf = new Map(agents.map((a) => [a.id, a.host]));
  for (const a of plan.assignments) {
    const host = hostOf.get(a.agentId) as string;
    assert(host.startsWith(`host${a.taskPath.split("/")[1]?.slice(-1)}_`), `${a.taskPath} on ${host}`);
    perHost.set(host, (perHost.get(host) ?? 0) + 1);
  }
  assert([...perHost.values()].every((n) => n <= 100));
});

Deno.test("placement: says exactly what is missing", () => {
  const xml = ddsText("topology_test_assets.xml").replace(
    'value="${requirementVar}"',
    'value=".+\\.gsi\\.de"',
  );
  const e = expand(xml);
  const plan = placeTasks(e, [
    { id: "a", host: "x.gsi.de", freeSlots: 4 },
    { id: "b", host: "elsewhere.org", freeSlots: 1000 },
  ]);
  assert(plan.unplaced.length > 0);
  assert(
    plan.reasons.includes(
      'Cannot place 25 of 26 instances of collection "collection1" (4 tasks each): needs 104 slots on hosts ' +
        "matching '.+\\.gsi\\.de', 4 free",
    ),
    plan.reasons.join("\n"),
  );
  assertEquals(plan.assignments.length + plan.unplaced.length, e.tasks.length);
});

Deno.test("placement: gpu and custom requirements use agent GPUs and labels", () => {
  const xml = `<topology name="t">
    <declrequirement name="gpu2" type="gpu" value="2"/>
    <declrequirement name="eu" type="custom" value="zone=eu-.*"/>
    <decltask name="train"><exe>train</exe><requirements><name>gpu2</name><name>eu</name></requirements></decltask>
    <decltask name="any"><exe>x</exe></decltask>
    <main name="main"><group name="g" n="3"><task>train</task><task>any</task></group></main></topology>`;
  const e = expand(xml);
  const plan = placeTasks(e, [
    { id: "cpu", host: "c", freeSlots: 10, labels: { zone: "eu-1" } },
    { id: "gpu-us", host: "g1", freeSlots: 10, gpus: 8, labels: { zone: "us-1" } },
    { id: "gpu-eu", host: "g2", freeSlots: 10, gpus: 4, labels: { zone: "eu-2" } },
  ]);
  const train = plan.assignments.filter((a) => a.taskPath.includes("train"));
  assertEquals(train.map((a) => a.agentId), ["gpu-eu", "gpu-eu"]);
  assertEquals(plan.unplaced, ["main/g/train_2"]);
  assert(plan.reasons[0]?.includes("agents labelled 'zone=eu-.*'"), plan.reasons[0]);
  assert(plan.reasons[0]?.includes("each needs 2 GPUs"), plan.reasons[0]);
});

Deno.test("placement: a collection larger than any agent is explained", () => {
  const e = expand(ddsText("topology_test_property_1.xml"));
  const plan = placeTasks(e, [{ id: "a", host: "h", freeSlots: 8 }, { id: "b", host: "h", freeSlots: 8 }]);
  assertEquals(plan.unplaced.length, 10);
  assert(plan.reasons[0]?.endsWith("the largest matching agent has 8 free"), plan.reasons[0]);
});

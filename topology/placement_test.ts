import { assertEquals, assertOk as assert, testdataText } from "./_testdata.ts";
import { expandTopology } from "./expand.ts";
import { parseTopology } from "./parse.ts";
import { placeTasks } from "./placement.ts";
import type { AgentSlots } from "./types.ts";

const expand = (xml: string) => expandTopology(parseTopology(xml));

Deno.test("placement: whole collections go to one agent, before plain tasks", () => {
  const e = expand(testdataText("ripple.xml"));
  const agents: AgentSlots[] = ["a", "b", "c", "d"].map((id, i) => ({ id, host: `h${i}`, freeSlots: 4 }));
  const plan = placeTasks(e, agents);
  assertEquals(plan.unplaced, []);
  assertEquals(plan.reasons, []);
  const agentOf = new Map(plan.assignments.map((a) => [a.taskPath, a.agentId]));
  assertEquals(agentOf.size, 16);
  // Each collection fills one agent's first three slots; the plain tasks take the fourth slot that is left.
  const collectionAgent = new Map([
    ["main/Swell_0", "a"],
    ["main/Surf/Swell_0", "b"],
    ["main/Surf/Swell_1", "c"],
    ["main/Surf/Swell_2", "d"],
  ]);
  for (const c of e.collections) {
    const want = collectionAgent.get(c.path);
    assertEquals(c.tasks.map((t) => agentOf.get(t.path)), [want, want, want], c.path);
  }
  assertEquals(plan.assignments.slice(12).map((a) => `${a.taskPath}@${a.agentId}`), [
    "main/Crest_0@a",
    "main/Surf/Wave_0@b",
    "main/Surf/Wave_1@c",
    "main/Surf/Wave_2@d",
  ]);
});

Deno.test("placement: hostname regex and maxinstances per host are honoured", () => {
  const e = expand(testdataText("fleet.xml"));
  const agents: AgentSlots[] = [];
  for (const rack of ["a", "b", "c"]) {
    for (let h = 0; h < 7; h++) {
      agents.push({ id: `${rack}${h}-x`, host: `rack-${rack}-${h}`, freeSlots: 3 });
      agents.push({ id: `${rack}${h}-y`, host: `rack-${rack}-${h}`, freeSlots: 3 });
    }
  }
  agents.push({ id: "odd", host: "rack-a-7.spare", freeSlots: 100 });
  const plan = placeTasks(e, agents);
  assertEquals(plan.unplaced, []);
  const hostOf = new Map(agents.map((a) => [a.id, a.host]));
  const perHost = new Map<string, number>();
  for (const a of plan.assignments) {
    const host = hostOf.get(a.agentId) as string;
    const rack = a.taskPath.split("/")[1]?.slice(-1).toLowerCase();
    assert(new RegExp(`^rack-${rack}-[0-9]+$`).test(host), `${a.taskPath} on ${host}`);
    perHost.set(host, (perHost.get(host) ?? 0) + 1);
  }
  // Agents are filled in order, up to 4 probes per host: six hosts of each rack take 24.
  assertEquals(perHost.size, 18);
  assert([...perHost.values()].every((n) => n === 4), JSON.stringify([...perHost]));
  // Seven hosts per rack hold at most 28 of a rack's probes; 30 leave two unplaced, and say why.
  const more = placeTasks(expand(testdataText("fleet.xml").replace('value="24"', 'value="30"')), agents);
  assertEquals(more.unplaced, [
    "main/RackA/ProbeA_28",
    "main/RackA/ProbeA_29",
    "main/RackB/ProbeB_28",
    "main/RackB/ProbeB_29",
    "main/RackC/ProbeC_28",
    "main/RackC/ProbeC_29",
  ]);
  assertEquals(more.reasons.length, 3, more.reasons.join("\n"));
  assert(more.reasons.every((r) => r.includes("at most 4 per host")), more.reasons.join("\n"));
});

Deno.test("placement: survey.xml's requirements of every type are met together", () => {
  const e = expand(testdataText("survey.xml"));
  const lab = (n: number): AgentSlots => ({
    id: `lab${n}`,
    host: `node-${n}.lab`,
    wnName: `wn-lab-${n}`,
    group: "lab",
    freeSlots: 16,
  });
  const agents: AgentSlots[] = [
    lab(1),
    lab(2),
    lab(3),
    { id: "gpu-us", host: "g1.cloud", freeSlots: 4, gpus: 4, labels: { zone: "us-east" } },
    { id: "gpu-eu", host: "g2.cloud", freeSlots: 4, gpus: 1, labels: { zone: "eu-west" } },
    { id: "plain", host: "node-9.lab.old", wnName: "wn-old", freeSlots: 100 },
  ];
  const plan = placeTasks(e, agents);
  assertEquals([plan.unplaced, plan.reasons], [[], []]);
  const agentOf = new Map(plan.assignments.map((a) => [a.taskPath, a.agentId]));
  assertEquals(agentOf.get("main/Trainer_0"), "gpu-eu");
  for (const [path, agent] of agentOf) {
    if (path === "main/Trainer_0") continue;
    assert(/^lab[123]$/.test(agent), `${path} on ${agent}`);
  }
  // maxinstances on a collection's task bounds the collection's instances per host: two Vaults, then the next.
  const vaults = plan.assignments.filter((a) => a.taskPath.endsWith("/Archiver_0")).map((a) => a.agentId);
  assertEquals(vaults, ["lab1", "lab1", "lab2"]);
  for (const c of e.collections) {
    assertEquals(new Set(c.tasks.map((t) => agentOf.get(t.path))).size, 1, c.path);
  }
});

Deno.test("placement: says exactly what is missing", () => {
  const e = expand(testdataText("survey.xml"));
  const plan = placeTasks(e, [
    { id: "a", host: "node-1.lab", freeSlots: 4 },
    { id: "b", host: "elsewhere.org", freeSlots: 1000 },
  ]);
  assertEquals(plan.reasons, [
    `Cannot place 3 of 3 instances of collection "Vault" (2 tasks each): needs 6 slots on agent groups matching '^lab$', 0 free (none of 2 agents matches); at most 2 per host`,
    `Cannot place 7 of 8 instances of collection "Station" (4 tasks each): needs 32 slots on hosts matching '^node-[0-9]+\\.lab$', 4 free`,
    `Cannot place 1 of 1 instances of task "Trainer": needs 1 slots on agents labelled 'zone=eu-.*', 0 free (none of 2 agents matches); each needs 1 GPUs on its agent`,
    `Cannot place 7 of 7 instances of task "Reporter": needs 7 slots on worker nodes matching 'wn-lab-[0-9]+', 0 free (none of 2 agents matches)`,
  ]);
  assertEquals(plan.assignments.map((a) => a.agentId), ["a", "a", "a", "a"]);
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
  const e = expand(testdataText("ripple.xml"));
  const plan = placeTasks(e, [{ id: "a", host: "h", freeSlots: 2 }, { id: "b", host: "h", freeSlots: 2 }]);
  assertEquals(plan.unplaced.length, 12);
  assertEquals(plan.assignments.length, 4);
  assert(plan.reasons[0]?.endsWith("the largest matching agent has 2 free"), plan.reasons[0]);
});

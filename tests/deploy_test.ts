/**
 * Deploying topologies on a real local mesh: the built binary, real agents, real task processes.
 */
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { activateTopology, CommanderError } from "../commander/mod.ts";
import { type RacingCommander, racingCommanders, topologyRecord } from "./_commanders.ts";
import { watchEvents } from "./_events.ts";
import {
  isRunning,
  processesWith,
  ps,
  SHOAL_BIN,
  sleepers,
  startMesh,
  type TestAgent,
  writeTopology,
} from "./_harness.ts";
import { waitFor } from "./_wait.ts";

/** shoal's own DDS-format topologies (DDS's files are in `dds_conformance_test.ts`). */
const TESTDATA = new URL("../topology/testdata/", import.meta.url).pathname;
/** A per-run number in sleep arguments, so that leftovers of other runs never count. */
const RUN = 10_000 + Math.floor(Math.random() * 80_000);

Deno.test("deploy: ripple.xml runs its 16 tasks, collections whole, and stop leaves no process of it", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 9 });
  const act = await mesh.run(["topology", "activate", `${TESTDATA}ripple.xml`, "--json"]);
  assertEquals(act.code, 0, act.stderr);
  assertEquals((JSON.parse(act.stdout) as { started: number }).started, 16);
  const tasks = await ps(mesh);
  assertEquals(tasks.length, 16);
  assert(tasks.every((t) => t.state === "running" && t.pid && isRunning(t.pid)));
  const agentOf = new Map(tasks.map((t) => [t.path, t.agent]));
  for (const coll of ["main/Swell_0", "main/Surf/Swell_0", "main/Surf/Swell_1", "main/Surf/Swell_2"]) {
    const agents = new Set(["Crest_0", "Wave_0", "Wave_1"].map((t) => agentOf.get(`${coll}/${t}`)));
    assertEquals(agents.size, 1, `${coll} on one agent`);
    assert(!agents.has(undefined), `${coll} runs`);
  }
  const stop = await mesh.run(["topology", "stop", "--json"]);
  assertEquals(stop.code, 0, stop.stderr);
  assertEquals((JSON.parse(stop.stdout) as { stopped: number; killed: number }).stopped, 16);
  for (const t of tasks) assert(!isRunning(t.pid!), `task ${t.path} (${t.pid}) survived stop`);
  assertEquals(await ps(mesh), []);
});

Deno.test("deploy: beacon.xml ships its executable and env script, with DDS's environment and indices", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 5 });
  // Only the commander's machine has the files: reachable="false" sends them with the lease.
  const beaconHome = join(mesh.home.dir, "beacon");
  mkdirSync(beaconHome);
  const exe = join(beaconHome, "lamp");
  Deno.writeTextFileSync(
    exe,
    `#!/bin/sh\necho "ARGS $*"\necho "COLOUR $LAMP_COLOUR"\nenv | grep '^DDS_' | sort\n`,
  );
  chmodSync(exe, 0o755);
  Deno.writeTextFileSync(join(beaconHome, "lamp.env"), "export LAMP_COLOUR=amber\n");
  const act = await mesh.home.run([
    "topology",
    "activate",
    `${TESTDATA}beacon.xml`,
    "--json",
    "--session",
    mesh.session,
  ], { env: { BEACON_HOME: beaconHome } });
  assertEquals(act.code, 0, act.stderr);
  const tasks = await waitFor(async () => {
    const t = await ps(mesh);
    return t.every((x) => x.state === "exited") ? t : undefined;
  }, { what: "tasks to finish" });
  assertEquals(
    tasks.map((t) => [t.path, t.exitCode]).sort(),
    [
      "main/Lamp_0",
      "main/Tower/Lamp_0",
      "main/Tower/Lamp_1",
      "main/Tower/Ring_0/Lamp_0",
      "main/Tower/Ring_0/Lamp_1",
      "main/Tower/Ring_0/Lamp_2",
      "main/Tower/Ring_1/Lamp_0",
      "main/Tower/Ring_1/Lamp_1",
      "main/Tower/Ring_1/Lamp_2",
    ].map((p) => [p, 0]),
  );
  const session = JSON.parse(
    readFileSync(join(mesh.home.dir, "sessions", mesh.session, "session.json"), "utf8"),
  );
  const out = (await mesh.run(["logs", "--no-prefix", "main/Tower/Ring_1/Lamp_2$"])).stdout;
  const task = tasks.find((t) => t.path === "main/Tower/Ring_1/Lamp_2")!;
  assertStringIncludes(out, "ARGS --slot 2 --ring 1\n");
  assertStringIncludes(out, "COLOUR amber\n");
  assertStringIncludes(out, "DDS_TASK_PATH=main/Tower/Ring_1/Lamp_2\n");
  assertStringIncludes(out, "DDS_TASK_INDEX=2\n");
  assertStringIncludes(out, "DDS_TASK_NAME=Lamp\n");
  assertStringIncludes(out, `DDS_TASK_ID=${task.id}\n`);
  assertStringIncludes(out, "DDS_COLLECTION_INDEX=1\n");
  assertStringIncludes(out, "DDS_COLLECTION_NAME=Ring\n");
  assertStringIncludes(out, "DDS_GROUP_NAME=Tower\n");
  assertStringIncludes(out, `DDS_SESSION_ID=${session.id}\n`);
  // Each agent hands out its slot IDs 0…n-1 (one per slot), so a fresh agent's tasks hold 0…k-1, distinct.
  const all = (await mesh.run(["logs", "main/"])).stdout;
  const slotOf = new Map(
    [...all.matchAll(/^\[([^\]]+)\] DDS_SLOT_ID=(.*)$/gm)].map((m) => [m[1]!, m[2]!]),
  );
  assertEquals(slotOf.size, 9, all);
  for (const agent of new Set(tasks.map((t) => t.agent))) {
    const slots = tasks.filter((t) => t.agent === agent).map((t) => slotOf.get(t.path)!).sort();
    assertEquals(slots, slots.map((_, i) => String(i)), `slot IDs on agent ${agent}`);
  }
  assertStringIncludes(out, `DDS_SLOT_ID=${slotOf.get(task.path)}\n`);
  // A task outside any collection keeps the placeholder, as DDS does.
  const top = (await mesh.run(["logs", "--no-prefix", "main/Tower/Lamp_1$"])).stdout;
  assertStringIncludes(top, "ARGS --slot 1 --ring %collectionIndex%\n");
  assertStringIncludes(top, "DDS_GROUP_NAME=Tower\n");
});

Deno.test("deploy: a crashing task with a RestartTask trigger restarts exactly N times", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 2 });
  const file = writeTopology(
    mesh.home.dir,
    "crash.xml",
    `<topology name="Crash">
  <decltrigger name="restart" condition="TaskCrashed" action="RestartTask" arg="2"/>
  <decltask name="Crasher"><exe reachable="true">sh -c 'echo run; exit 3'</exe>
    <triggers><name>restart</name></triggers></decltask>
  <decltask name="Plain"><exe reachable="true">sh -c 'exit 4'</exe></decltask>
  <main name="main"><task>Crasher</task><task>Plain</task></main>
</topology>`,
  );
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  await waitFor(async () => (await ps(mesh)).every((t) => t.state === "exited"), { what: "both to end" });
  const tasks = await ps(mesh);
  const crasher = tasks.find((t) => t.path === "main/Crasher_0")!;
  const plain = tasks.find((t) => t.path === "main/Plain_0")!;
  assertEquals([crasher.restarts, crasher.exitCode], [2, 3]);
  assertEquals([plain.restarts, plain.exitCode], [0, 4]);
  const logs = await mesh.run(["logs", "--no-prefix", "Crasher"]);
  assertEquals(logs.stdout.split("\n").filter((l) => l === "run").length, 3);
});

Deno.test("deploy: update stops removed tasks, starts added ones, keeps unchanged PIDs", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 4 });
  const v1 = writeTopology(
    mesh.home.dir,
    "v1.xml",
    `<topology name="Upd">
  <decltask name="Keep"><exe reachable="true">sleep 3101${RUN}</exe></decltask>
  <decltask name="Drop"><exe reachable="true">sleep 3102${RUN}</exe></decltask>
  <main name="main"><task>Drop</task><group name="g" n="2"><task>Keep</task></group></main>
</topology>`,
  );
  const v2 = writeTopology(
    mesh.home.dir,
    "v2.xml",
    `<topology name="Upd">
  <decltask name="Keep"><exe reachable="true">sleep 3101${RUN}</exe></decltask>
  <decltask name="Add"><exe reachable="true">sleep 3103${RUN}</exe></decltask>
  <main name="main"><task>Add</task><group name="g" n="2"><task>Keep</task></group></main>
</topology>`,
  );
  assertEquals((await mesh.run(["topology", "activate", v1])).code, 0);
  const before = await ps(mesh);
  const dropPid = before.find((t) => t.path === "main/Drop_0")!.pid!;
  const upd = await mesh.run(["topology", "update", v2, "--json"]);
  assertEquals(upd.code, 0, upd.stderr);
  const r = JSON.parse(upd.stdout) as { removed: string[]; added: string[] };
  assertEquals([r.removed, r.added], [["main/Drop_0"], ["main/Add_0"]]);
  const after = await ps(mesh);
  for (const t of before.filter((t) => t.path.startsWith("main/g/"))) {
    assertEquals(after.find((a) => a.path === t.path)?.pid, t.pid, `${t.path} kept its PID`);
  }
  assert(!isRunning(dropPid));
  assert(after.find((t) => t.path === "main/Add_0")?.state === "running");
  assertEquals(processesWith(`sleep 3102${RUN}`), []);
});

Deno.test("deploy: stop kills every process of the topology, children and setsid grandchildren too", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 3 });
  const file = writeTopology(
    mesh.home.dir,
    "tree.xml",
    `<topology name="Tree">
  <decltask name="Parent"><exe reachable="true">sh -c 'sleep 3201${RUN} &amp; setsid sleep 3202${RUN} &amp; trap "" TERM; sleep 3203${RUN}'</exe></decltask>
  <main name="main"><group name="g" n="3"><task>Parent</task></group></main>
</topology>`,
  );
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  const tree = () => [1, 2, 3].flatMap((i) => processesWith(`320${i}${RUN}`));
  await waitFor(() => tree().length >= 9, { what: "the sleeps to start" });
  const stop = await mesh.run(["topology", "stop", "--grace", "0.5"]);
  assertEquals(stop.code, 0, stop.stderr);
  assertEquals(tree(), []);
});

Deno.test("deploy: a topology that does not fit starts nothing and says what is missing", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const file = writeTopology(mesh.home.dir, "big.xml", sleepers("Big", 5, Number(`3301${RUN}`)));
  const r = await mesh.run(["topology", "activate", file]);
  assertEquals(r.code, 1);
  assertEquals(
    r.stderr,
    `shoal: Cannot place 5 task(s): Cannot place 1 of 5 instances of task "Sleeper": needs 5 slots on any agent, 4 free\n`,
  );
  assertEquals(processesWith(`sleep 3301${RUN}`), []);
  assertEquals(await ps(mesh), []);
});

Deno.test("deploy: a missing executable fails its task with a reason, not the agent", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 2 });
  const file = writeTopology(
    mesh.home.dir,
    "missing.xml",
    `<topology name="Missing">
  <decltask name="Ghost"><exe reachable="true">/no/such/program --x</exe></decltask>
  <decltask name="Fine"><exe reachable="true">sleep 3401${RUN}</exe></decltask>
  <main name="main"><task>Ghost</task><task>Fine</task></main>
</topology>`,
  );
  const r = await mesh.run(["topology", "activate", file, "--json"]);
  assertEquals(r.code, 1);
  const tasks = (JSON.parse(r.stdout) as { tasks: { path: string; state: string; reason?: string }[] }).tasks;
  const ghost = tasks.find((t) => t.path === "main/Ghost_0")!;
  assertEquals(ghost.state, "failed");
  assertStringIncludes(ghost.reason ?? "", "/no/such/program");
  assert(isRunning(mesh.agents[0]!.pid));
  assertEquals((await ps(mesh)).find((t) => t.path === "main/Fine_0")?.state, "running");
});

/** `[topology, tasks]` of each lease an agent granted, from its log. */
function grantsOf(agent: TestAgent): [string, number][] {
  const log = readFileSync(join(agent.dataDir, "agent.log"), "utf8");
  return [...log.matchAll(/lease granted topology=(\S+) tasks=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]);
}

Deno.test("deploy: two commanders placing on one view: the one refused re-places the rest on what is left", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 3 });
  // Each commander's plan (from 3 + 3 free) puts its 2 tasks on the first agent; neither leases before both
  // have planned. The first agent grants one lease and refuses the other (1 free for 2 tasks); the refused
  // commander places again on fresh free slots, 1 on the first agent and 1 on the second.
  await using race = await racingCommanders(mesh, { count: 2, held: 2 });
  const [a, b] = race.commanders as [RacingCommander, RacingCommander];
  const [ra, rb] = await Promise.all([
    activateTopology(a.init, { file: "pa.xml", source: sleepers("PA", 2, Number(`3501${RUN}`)), vars: {} }),
    activateTopology(b.init, { file: "pb.xml", source: sleepers("PB", 2, Number(`3502${RUN}`)), vars: {} }),
  ]);
  assert(race.raced(), "both commanders planned before either leased");
  const first = mesh.agents.find((x) => x.id === a.leases[0])!;
  const second = mesh.agents.find((x) => x !== first)!;
  assertEquals(b.leases[0], first.id, "both asked the same agent first");
  const [winner, loser] = a.leases.length === 1 ? [ra, rb] : [rb, ra];
  const loserLeases = (winner === ra ? b : a).leases;
  assertEquals((winner === ra ? a : b).leases, [first.id], "the winner leased once");
  assertEquals(loserLeases.slice(-2), [first.id, second.id], "the loser's last round used both agents");
  assertEquals(winner.tasks.map((t) => [t.agent, t.state]), [[first.id, "running"], [first.id, "running"]]);
  assertEquals(loser.tasks.map((t) => t.agent).sort(), [first.id, second.id].sort());
  assert(loser.tasks.every((t) => t.state === "running"));
  // What the agents granted: the loser's first request to the first agent was refused, not lost (a failed
  // request would have struck that agent from the loser's later plans).
  assertEquals(grantsOf(first), [[winner.topologyId, 2], [loser.topologyId, 1]]);
  assertEquals(grantsOf(second), [[loser.topologyId, 1]]);
  const running = (await ps(mesh)).filter((t) => t.state === "running");
  assertEquals([first.id, second.id].map((id) => running.filter((t) => t.agent === id).length), [3, 1]);
  assertEquals(processesWith(`sleep 3501${RUN}`).length + processesWith(`sleep 3502${RUN}`).length, 4);
});

Deno.test("deploy: two commanders activating at once never overbook a slot; the loser starts nothing", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 3 });
  // Each plans 3 tasks on the first agent and 1 on the second, and all four leases go out together: the
  // first agent grants one commander's 3 and refuses the other's, the second grants both 1s. The refused
  // commander's 3 fit nowhere now (1 free), so it stops the task it did start.
  await using race = await racingCommanders(mesh, { count: 2, held: 4 });
  const [a, b] = race.commanders as [RacingCommander, RacingCommander];
  const results = await Promise.allSettled([
    activateTopology(a.init, { file: "a.xml", source: sleepers("A", 4, Number(`3511${RUN}`)), vars: {} }),
    activateTopology(b.init, { file: "b.xml", source: sleepers("B", 4, Number(`3512${RUN}`)), vars: {} }),
  ]);
  assert(race.raced(), "both commanders planned before either leased");
  assertEquals(a.leases.slice(0, 2).sort(), b.leases.slice(0, 2).sort(), "both planned the same two leases");
  const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  // The agent both planned 3 tasks on, and the one they planned 1 on (the leases go out in either order).
  const first = mesh.agents.find((x) => won[0]?.tasks.filter((t) => t.agent === x.id).length === 3)!;
  const second = mesh.agents.find((x) => x !== first)!;
  const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
  assertEquals(won.length, 1, JSON.stringify(results));
  assertEquals(lost.length, 1);
  const winner = won[0]!;
  const loserId = winner.topologyId === "A" ? "B" : "A";
  const err = lost[0]!;
  assert(err instanceof CommanderError, String(err));
  assert(err.message.startsWith("Cannot place 3 task(s): "), err.message);
  assertEquals(err.placed.map((t) => [t.agent, t.state]), [[second.id, "running"]]);
  assertEquals(winner.tasks.filter((t) => t.agent === first.id).length, 3);
  assertEquals(grantsOf(first), [[winner.topologyId, 3]]);
  assertEquals(grantsOf(second).sort(), [["A", 1], ["B", 1]]);
  const running = (await ps(mesh)).filter((t) => t.state === "running");
  assertEquals(running.map((t) => t.topologyId), Array(4).fill(winner.topologyId));
  assertEquals([first.id, second.id].map((id) => running.filter((t) => t.agent === id).length), [3, 1]);
  const marker = (id: string) => `sleep ${id === "A" ? 3511 : 3512}${RUN}`;
  assertEquals([processesWith(marker(winner.topologyId)).length, processesWith(marker(loserId)).length], [
    4,
    0,
  ]);
});

/** The alive agent with the lowest peer ID: the one that takes over a dead agent's topologies. */
function lowest(agents: TestAgent[]): TestAgent {
  return [...agents].sort((x, y) => (x.id < y.id ? -1 : 1))[0]!;
}

Deno.test("deploy: a SIGKILLed agent's tasks are reported lost and placed elsewhere under a new epoch", async () => {
  await using mesh = await startMesh({ agents: 3, slots: 2 });
  const file = writeTopology(mesh.home.dir, "move.xml", sleepers("Move", 2, Number(`3601${RUN}`)));
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  const before = await ps(mesh);
  const victim = mesh.agents.find((a) => a.id === before[0]!.agent)!;
  const lostPaths = before.filter((t) => t.agent === victim.id).map((t) => t.path).sort();
  assertEquals(lostPaths, ["main/g/Sleeper_0", "main/g/Sleeper_1"], "the first agent holds both");
  const lostPids = before.filter((t) => t.agent === victim.id).map((t) => t.pid!);
  const survivors = mesh.agents.filter((a) => a !== victim);
  const taker = lowest(survivors);
  await using events = await watchEvents(mesh);
  process.kill(victim.pid, "SIGKILL");
  const replaced = await events.next((e) => e.type === "tasks:replaced", { what: "tasks:replaced" });
  const lost = events.events().find((e) => e.type === "tasks:lost")!;
  assertEquals(
    [lost.by, lost.topologyId, lost.agent, lost.paths],
    [taker.id, "Move", victim.id, lostPaths],
  );
  const placed = replaced.placed as { path: string; agent: string; state: string }[];
  assertEquals([replaced.by, replaced.topologyId, replaced.epoch], [taker.id, "Move", 2]);
  assertEquals([replaced.lost, replaced.reasons], [[], []]);
  assertEquals(placed.map((t) => [t.path, t.state]).sort(), lostPaths.map((p) => [p, "running"]));
  assert(placed.every((t) => survivors.some((a) => a.id === t.agent)), JSON.stringify(placed));
  const record = (await topologyRecord(mesh, taker, "Move"))!;
  assertEquals([record.epoch, record.commander, Object.hasOwn(record.placement, victim.id)], [
    2,
    taker.id,
    false,
  ]);
  const after = await ps(mesh);
  assertEquals(
    after.map((t) => [t.path, t.agent, t.state]).sort(),
    placed.map((t) => [t.path, t.agent, "running"]).sort(),
  );
  await waitFor(() => lostPids.every((p) => !isRunning(p)), {
    what: "the dead agent's tasks to die with it",
  });
  assertEquals(processesWith(`sleep 3601${RUN}`).length, 2);
});

Deno.test("deploy: a SIGKILLed agent's tasks with no free slot left are reported lost, not re-placed", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 1 });
  const file = writeTopology(mesh.home.dir, "stay.xml", sleepers("Stay", 2, Number(`3602${RUN}`)));
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  const before = await ps(mesh);
  const [victim, survivor] = [mesh.agents[0]!, mesh.agents[1]!];
  const gone = before.find((t) => t.agent === victim.id)!;
  const kept = before.find((t) => t.agent === survivor.id)!;
  await using events = await watchEvents(mesh);
  process.kill(victim.pid, "SIGKILL");
  const replaced = await events.next((e) => e.type === "tasks:replaced", { what: "tasks:replaced" });
  const lost = events.events().find((e) => e.type === "tasks:lost")!;
  assertEquals([lost.by, lost.topologyId, lost.agent, lost.paths], [survivor.id, "Stay", victim.id, [
    gone.path,
  ]]);
  assertEquals(
    [replaced.by, replaced.topologyId, replaced.epoch, replaced.placed, replaced.lost, replaced.reasons],
    [survivor.id, "Stay", 2, [], [gone.path], [
      `Cannot place 1 task(s): Cannot place 1 of 1 instances of task "Sleeper": needs 1 slots on any agent, 0 free`,
    ]],
  );
  const record = (await topologyRecord(mesh, survivor, "Stay"))!;
  assertEquals([record.epoch, record.state, record.placement], [2, "active", { [survivor.id]: [kept.path] }]);
  assertEquals((await ps(mesh)).map((t) => [t.path, t.agent, t.pid, t.state]), [
    [kept.path, survivor.id, kept.pid, "running"],
  ]);
  await waitFor(() => !isRunning(gone.pid!), { what: "the dead agent's task to die with it" });
  assertEquals(processesWith(`sleep 3602${RUN}`), [kept.pid]);
});

Deno.test("deploy: an agent's SIGTERM and shoal down leave no task behind", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const file = writeTopology(mesh.home.dir, "bye.xml", sleepers("Bye", 4, Number(`3701${RUN}`)));
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  const tasks = await ps(mesh);
  const first = mesh.agents[0]!;
  process.kill(first.pid, "SIGTERM");
  await waitFor(() => !isRunning(first.pid), { what: "the agent to stop" });
  for (const t of tasks.filter((t) => t.agent === first.id)) assert(!isRunning(t.pid!), `${t.path} survived`);
  assertEquals((await mesh.run(["down"])).code, 0);
  assertEquals(processesWith(`sleep 3701${RUN}`), []);
});

Deno.test("deploy: logs -f streams what tasks write, --collect copies the files", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 1 });
  const file = writeTopology(
    mesh.home.dir,
    "talk.xml",
    `<topology name="Talk">
  <decltask name="Talker"><exe reachable="true">sh -c 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.2; done'</exe></decltask>
  <main name="main"><group name="g" n="2"><task>Talker</task></group></main>
</topology>`,
  );
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  const follow = new Deno.Command(SHOAL_BIN, {
    args: ["logs", "-f", "Talker_1$", "--session", mesh.session],
    env: mesh.home.env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let out = "";
  const reading = (async () => {
    for await (const chunk of follow.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
  })();
  try {
    // Lines written after the follower started keep arriving.
    await waitFor(() => (out.match(/\[main\/g\/Talker_1\] line \d+/g) ?? []).length >= 8, {
      what: "8 lines",
    });
    assert(!out.includes("Talker_0"));
  } finally {
    follow.kill("SIGINT");
    await follow.status;
    await reading;
  }
  const dir = join(mesh.home.dir, "collected");
  const collect = await mesh.run(["logs", "--collect", dir]);
  assertEquals(collect.code, 0, collect.stderr);
  const taskDir = join(dir, "Talk", "main", "g", "Talker_0");
  const outFile = [...Deno.readDirSync(taskDir)].find((e) => e.name.endsWith(".out"))!;
  assertStringIncludes(readFileSync(join(taskDir, outFile.name), "utf8"), "line 1\n");
});

/**
 * All or nothing when the commander dies half-way: a real light peer that leases slots and starts tasks
 * like a commander does, records one topology and not the other, then goes away; and a real
 * `shoal topology activate` SIGKILLed while its tasks start.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { putTopology } from "../commander/mod.ts";
import { LEASE_PROTOCOL, LeaseResponseSchema } from "../agent/wire/mod.ts";
import { createMeshNode, request, writeSwarmKey } from "../mesh/mod.ts";
import { topologyRecord } from "./_commanders.ts";
import {
  createHome,
  processesWith,
  ps,
  SHOAL_BIN,
  spawnAgent,
  startMesh,
  type TestAgent,
  writeTopology,
} from "./_harness.ts";
import { holdsUntil, waitFor } from "./_wait.ts";

/** What an agent logs when it stops the tasks of a commander that left before recording their topology. */
const ORPHANED = "commander left before its topology was recorded; stopping its tasks (all or nothing)";

Deno.test("orphans: tasks of a commander that died before recording its topology are stopped; recorded ones stay", async () => {
  await using home = createHome();
  const keyFile = `${home.dir}/swarm.key`;
  const swarmKey = await writeSwarmKey(keyFile);
  await using agent = spawnAgent(home, "a", [
    "--swarm-key",
    keyFile,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--slots",
    "5",
    "--orphan-grace",
    "1",
  ]);
  const info = await agent.ready();
  // Markers in the process table: a run-unique number of seconds per topology.
  const run = String(100_000 + Math.floor(Math.random() * 800_000));
  const marker = (topologyId: string) => `sleep 9${run}${["Lost", "Kept", "Control"].indexOf(topologyId)}`;
  const agentLog = () => Deno.readTextFileSync(`${agent.dataDir}/agent.log`);
  const spec = (topologyId: string, i: number) => ({
    topologyId,
    path: `main/t_${i}`,
    id: String(1000 + i),
    name: "t",
    index: i,
    groupName: "main",
    exe: marker(topologyId),
    maxRestarts: 0,
    slotId: "",
    sessionId: "",
  });
  const commander = await createMeshNode({ swarmKey });
  try {
    await commander.dial(info.addrs[0]!);
    for (const topologyId of ["Lost", "Kept"]) {
      const res = await request(commander, info.id, LEASE_PROTOCOL, {
        topologyId,
        epoch: 1,
        commander: commander.peerId,
        tasks: [spec(topologyId, 0), spec(topologyId, 1)],
      }, { schema: LeaseResponseSchema, timeoutMs: 30_000 });
      assertEquals(res.granted, true, JSON.stringify(res));
    }
    const lost = marker("Lost");
    const kept = marker("Kept");
    await waitFor(() => processesWith(lost).length === 2 && processesWith(kept).length === 2 || undefined, {
      timeout: 15_000,
      what: "the four leased tasks to run",
    });
    // The commander records "Kept" (as it does once every task runs) but dies before recording "Lost".
    await putTopology({ node: commander, via: info.id, sessionId: "" }, {
      id: "Kept",
      name: "Kept",
      epoch: 1,
      version: 1,
      commander: commander.peerId,
      state: "active",
      source: "<topology/>",
      file: "kept.xml",
      vars: {},
      placement: { [info.id]: ["main/t_0", "main/t_1"] },
      updatedAt: Date.now(),
    });
    // While the commander is connected, nothing is stopped however long activation takes. A second
    // commander leases one task and leaves: once the agent gives up on it (logged in the same check that
    // would give up on the first), the first commander's unrecorded leases have outlasted the grace too.
    const control = await createMeshNode({ swarmKey });
    try {
      await control.dial(info.addrs[0]!);
      const res = await request(control, info.id, LEASE_PROTOCOL, {
        topologyId: "Control",
        epoch: 1,
        commander: control.peerId,
        tasks: [spec("Control", 0)],
      }, { schema: LeaseResponseSchema, timeoutMs: 30_000 });
      assertEquals(res.granted, true, JSON.stringify(res));
      await waitFor(() => processesWith(marker("Control")).length === 1, { what: "the control task to run" });
    } finally {
      await control.stop();
    }
    const gaveUp = (topologyId: string) => agentLog().includes(`${ORPHANED} topology=${topologyId} `);
    await holdsUntil(() => processesWith(lost).length === 2 && !gaveUp("Lost"), () => gaveUp("Control"), {
      timeout: 20_000,
      holds: "the connected commander's unrecorded tasks running",
      what: "the agent to give up on the commander that left",
    });
    await waitFor(() => processesWith(marker("Control")).length === 0, { what: "the control task to stop" });
    assertEquals(processesWith(lost).length, 2);
  } finally {
    await commander.stop();
  }
  await waitFor(() => processesWith(marker("Lost")).length === 0 || undefined, {
    timeout: 20_000,
    what: "the unrecorded topology's tasks to be stopped after the commander left",
  });
  assertEquals(processesWith(marker("Kept")).length, 2, "the recorded topology's tasks keep running");
  assertStringIncludes(agentLog(), `${ORPHANED} topology=Lost `);
  agent.kill("SIGTERM");
  assertEquals(await agent.exited, 0);
  assertEquals(processesWith(marker("Kept")).length, 0);
});

Deno.test("orphans: a shoal topology activate SIGKILLed half-way leaves every task running or, after the grace, none", async () => {
  // The session's own agent (default grace) gets no task: they all require the foreground agents' hosts.
  await using mesh = await startMesh({ agents: 1, slots: 1 });
  const perAgent = 30;
  const spawn = (name: string) =>
    spawnAgent(mesh.home, name, [
      "--listen",
      "/ip4/127.0.0.1/tcp/0",
      "--slots",
      String(perAgent),
      "--host",
      `orphan-${name}`,
      "--orphan-grace",
      "2",
    ]);
  await using a = spawn("a");
  await using b = spawn("b");
  const agents: TestAgent[] = [await a.ready(), await b.ready()];
  // The CLI leases only from agents whose addresses it has (see the session's `bootstrap`): a peer ID from
  // the membership view alone gives "no valid addresses".
  const sessionFile = join(mesh.home.dir, "sessions", mesh.session, "session.json");
  const session = JSON.parse(readFileSync(sessionFile, "utf8")) as { bootstrap: string[] };
  writeFileSync(sessionFile, JSON.stringify({ ...session, bootstrap: agents.map((x) => x.addrs[0]!) }));
  await waitFor(async () => {
    const view = await mesh.viewOf(mesh.agents[0]!);
    return agents.every((x) =>
      view.members.some((m) => m.id === x.id && m.state === "alive" && m.slots.free === perAgent)
    );
  }, { timeout: 15_000, what: "the foreground agents to join with their slots free" });
  const marker = `sleep 8${100_000 + Math.floor(Math.random() * 800_000)}`;
  const n = 2 * perAgent;
  const file = writeTopology(
    mesh.home.dir,
    "half.xml",
    `<topology name="Half">
  <declrequirement name="Fg" type="hostname" value="orphan-.*"/>
  <decltask name="S"><exe reachable="true">${marker}</exe><requirements><name>Fg</name></requirements></decltask>
  <main name="main"><group name="g" n="${n}"><task>S</task></group></main>
</topology>`,
  );
  const activate = new Deno.Command(SHOAL_BIN, {
    args: ["topology", "activate", file, "--session", mesh.session],
    env: mesh.home.env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(activate.stderr).text();
  let exited: Deno.CommandStatus | undefined;
  void activate.status.then((s) => exited = s);
  // Half-way: the first task runs while each agent is still starting its 30, long before the commander
  // could have recorded the topology (it does once every lease has answered).
  await waitFor(async () => {
    if (processesWith(marker).length > 0) return true;
    if (exited) {
      throw new Error(`topology activate exited (${exited.code}) before any task ran: ${await stderr}`);
    }
  }, { timeout: 30_000, interval: 5, what: "a task" }).catch(async (err) => {
    if (!exited) activate.kill("SIGKILL");
    throw new Error(`${(err as Error).message}\nactivate's stderr: ${await stderr}`);
  });
  activate.kill("SIGKILL");
  assertEquals((await activate.status).signal, "SIGKILL");
  await stderr;

  // Leases already on the wire still start their tasks; then the outcome settles one way or the other.
  const recorded = async () => (await topologyRecord(mesh, agents[0]!, "Half"))?.state === "active";
  const outcome = await waitFor(async () => {
    const running = processesWith(marker).length;
    if (running === 0) return (await ps(mesh)).length === 0 ? "none" : undefined;
    return running === n && await recorded() ? "all" : undefined;
  }, { timeout: 30_000, what: "every task to run with the topology recorded, or none to run" });
  if (outcome === "all") {
    const record = (await topologyRecord(mesh, agents[1]!, "Half"))!;
    assertEquals(Object.values(record.placement).flat().length, n, "the record lists every task");
    return;
  }
  for (const x of agents) assertEquals(await topologyRecord(mesh, x, "Half"), undefined);
  assertEquals(await ps(mesh), []);
  const logs = [a, b].map((x) => Deno.readTextFileSync(`${x.dataDir}/agent.log`));
  assert(logs.some((l) => l.includes(`${ORPHANED} topology=Half `)), "an agent said why it stopped them");
  await waitFor(async () => {
    const view = await mesh.viewOf(mesh.agents[0]!);
    return agents.every((x) => view.members.find((m) => m.id === x.id)?.slots.free === perAgent);
  }, { timeout: 15_000, what: "every slot to be free again" });
});

/**
 * The mesh with real agents: the built binary, real libp2p on 127.0.0.1.
 */
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { createHome, isRunning, SHOAL_BIN, spawnAgent, startMesh, writeTopology } from "./_harness.ts";
import { watchEvents } from "./_events.ts";
import * as v from "valibot";
import { waitFor } from "./_wait.ts";
import {
  createMeshNode,
  createSwarmKey,
  encode,
  EVENTS_TOPIC,
  readSwarmKey,
  SWIM_PROTOCOL,
  TASK_EVENTS_TOPIC,
  VIEW_PROTOCOL,
} from "../mesh/mod.ts";
import { lpStream } from "@libp2p/utils";

Deno.test("mesh: 5 agents form a mesh and every one sees all 5 alive", async () => {
  await using mesh = await startMesh({ agents: 5, slots: 2 });
  const ids = mesh.agents.map((a) => a.id).sort();
  for (const agent of mesh.agents) {
    await waitFor(async () => {
      const view = await mesh.viewOf(agent);
      const alive = view.members.filter((m) => m.state === "alive").map((m) => m.id).sort();
      return JSON.stringify(alive) === JSON.stringify(ids);
    }, { timeout: 15_000, what: `agent ${agent.id} to see all 5` });
  }
  const info = await mesh.run(["info", "--json"]);
  assertEquals(info.code, 0);
  const parsed = JSON.parse(info.stdout) as {
    agents: { id: string; slots: { total: number; free: number } }[];
  };
  assertEquals(parsed.agents.length, 5);
  assert(parsed.agents.every((a) => a.slots.total === 2 && a.slots.free === 2));
});

Deno.test("mesh: a SIGKILLed agent is marked dead by every other agent and monitor says so", async () => {
  await using mesh = await startMesh({ agents: 3 });
  const monitor = spawn(SHOAL_BIN, ["monitor", "--json", "--timeout", "60"], {
    env: { ...process.env, ...mesh.home.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let lines = "";
  monitor.stdout.on("data", (d) => (lines += d));
  const events = () =>
    lines.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; id?: string });
  try {
    await waitFor(() => events().filter((e) => e.type === "agent:joined").length >= 3, {
      timeout: 15_000,
      what: "monitor to see 3 agents",
    });
    const victim = mesh.agents[1]!;
    process.kill(victim.pid, "SIGKILL");
    for (const agent of mesh.agents.filter((a) => a !== victim)) {
      await waitFor(async () => {
        const view = await mesh.viewOf(agent);
        return view.members.find((m) => m.id === victim.id)?.state === "dead";
        // Correctness, not speed (that is `bench/mesh_scale.ts`): under a loaded suite the probes run late
        // and an agent refuses to suspect while its own tick lags, so this can take longer than ~2 s.
      }, { timeout: 30_000, what: `agent ${agent.id} to mark the victim dead` });
    }
    await waitFor(() => events().some((e) => e.type === "agent:dead" && e.id === victim.id), {
      timeout: 15_000,
      what: "monitor to print agent:dead",
    });
  } finally {
    monitor.kill("SIGTERM");
  }
});

Deno.test("mesh: an agent with another swarm key never appears in anyone's view", async () => {
  await using mesh = await startMesh({ agents: 2 });
  const otherKey = join(mesh.home.dir, "other.key");
  writeFileSync(otherKey, createSwarmKey());
  await using outsider = spawnAgent(mesh.home, "outsider", [
    "--swarm-key",
    otherKey,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--bootstrap",
    mesh.agents[0]!.addrs[0]!,
    ...mesh.agents[1]!.addrs.flatMap((a) => ["--bootstrap", a]),
  ]);
  await outsider.ready();
  // Two failed rounds of dials: it tried, and was refused.
  await waitFor(() => outsider.stderr().split("cannot reach any bootstrap peer").length > 2, {
    timeout: 15_000,
    what: "the outsider to be refused twice",
  });
  for (const agent of mesh.agents) {
    const view = await mesh.viewOf(agent);
    assertEquals(view.members.length, 2);
  }
});

Deno.test("mesh: an agent started before its bootstrap peer joins once the peer is up", async () => {
  await using home = createHome();
  const key = join(home.dir, "swarm.key");
  writeFileSync(key, createSwarmKey());
  // Learn the first agent's address (identity is stable per data dir), then stop it.
  const first = spawnAgent(home, "first", [
    "--swarm-key",
    key,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--quiet",
  ]);
  const { addrs: [addr] } = await first.ready();
  first.kill("SIGTERM");
  assertEquals(await first.exited, 0, first.stderr());
  const port = addr!.split("/")[4]!;

  await using late = spawnAgent(home, "late", [
    "--swarm-key",
    key,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--bootstrap",
    addr!,
  ]);
  const lateAgent = await late.ready();
  await waitFor(() => late.stderr().includes("cannot reach any bootstrap peer"), { what: "a failed dial" });

  await using again = spawnAgent(home, "first", [
    "--swarm-key",
    key,
    "--listen",
    `/ip4/127.0.0.1/tcp/${port}`,
  ]);
  const firstAgent = await again.ready();
  const probe = await createMeshNode({ swarmKey: await readSwarmKey(key) });
  try {
    const { request } = await import("../mesh/mod.ts");
    const { ViewSchema } = await import("../mesh/mod.ts");
    await waitFor(async () => {
      const view = await request(probe, firstAgent.addrs[0]!, VIEW_PROTOCOL, {}, { schema: ViewSchema });
      return view.members.some((m) => m.id === lateAgent.id && m.state === "alive");
    }, { timeout: 20_000, what: "the late agent to join" });
  } finally {
    await probe.stop();
  }
});

Deno.test("mesh: garbage and oversized frames leave the agent running and serving", async () => {
  await using mesh = await startMesh({ agents: 1 });
  const agent = mesh.agents[0]!;
  const [host, port] = [agent.addrs[0]!.split("/")[2]!, Number(agent.addrs[0]!.split("/")[4])];
  // Raw TCP junk: the private network handshake refuses it.
  await new Promise<void>((resolve) => {
    const sock = connect(port, host, () => sock.end(new Uint8Array(64 * 1024).fill(0xab)));
    sock.on("close", () => resolve());
    sock.on("error", () => resolve());
  });
  // Inside the mesh: junk, malformed and oversized frames on the view and membership protocols, junk gossip.
  const node = await createMeshNode({ swarmKey: await readSwarmKey(mesh.swarmKeyFile) });
  try {
    const frames = [
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]),
      new Uint8Array([5, 1, 2, 3, 4, 5]),
      encode({ unexpected: "x".repeat(2 * 1024 * 1024) }),
    ];
    for (const frame of frames) {
      const stream = await node.openStream(agent.addrs[0]!, VIEW_PROTOCOL);
      try {
        if (frame[0] === 0xff || frame[0] === 5) stream.send(frame);
        else await lpStream(stream).write(frame);
        await stream.close();
      } catch { /* the agent may reset the stream: that is the point */ }
    }
    // Membership: a well-framed message of the wrong shape, a lie about who is dead, then a truncated frame.
    const swim = lpStream(await node.openStream(agent.addrs[0]!, SWIM_PROTOCOL));
    await swim.write(encode({ t: "ping", seq: -1, g: "no" }));
    await swim.write(encode({ t: "gossip", g: [{ id: agent.id, inc: 0, st: "dead" }] }));
    await swim.write(new Uint8Array([0xa1, 0x61]));
    await node.publish(EVENTS_TOPIC, { type: 42 });
    await node.libp2p.services.pubsub.publish(EVENTS_TOPIC, new Uint8Array([0xde, 0xad]));
    const view = await mesh.viewOf(agent);
    assertEquals(view.members.map((m) => [m.id, m.state]), [[agent.id, "alive"]]);
    assert(isRunning(agent.pid));
  } finally {
    await node.stop();
  }
  await waitFor(async () => {
    const { readFile } = await import("node:fs/promises");
    return (await readFile(join(agent.dataDir, "agent.log"), "utf8")).includes("dropped malformed message");
  }, { what: "the agent to log the dropped messages" });
});

Deno.test("mesh: task starts reach the tools that follow every agent, and no agent forwards them", async () => {
  await using mesh = await startMesh({ agents: 3, slots: 1 });
  await using events = await watchEvents(mesh);
  // A tool connected to one agent: it hears which topics that agent takes part in.
  const node = await createMeshNode({ swarmKey: await readSwarmKey(mesh.swarmKeyFile) });
  try {
    node.subscribe(EVENTS_TOPIC, v.unknown(), () => {});
    node.subscribe(TASK_EVENTS_TOPIC, v.unknown(), () => {});
    const agent = mesh.agents[0]!;
    await node.dial(agent.addrs[0]!);
    const subscribers = (topic: string) =>
      node.libp2p.services.pubsub.getSubscribers(topic).map((p) => p.toString());
    await waitFor(() => subscribers(EVENTS_TOPIC).includes(agent.id), { what: "the agent's subscriptions" });
    assertEquals(subscribers(TASK_EVENTS_TOPIC), [], "an agent subscribed to task events would forward them");
  } finally {
    await node.stop();
  }
  const file = writeTopology(
    mesh.home.dir,
    "three.xml",
    `<topology name="three">
  <decltask name="Nap"><exe reachable="true">sleep 600</exe></decltask>
  <main name="main"><group name="g" n="3"><task>Nap</task></group></main>
</topology>`,
  );
  const act = await mesh.run(["topology", "activate", file]);
  assertEquals(act.code, 0, act.stderr);
  await waitFor(() => {
    const by = new Set(events.events().filter((e) => e.type === "task:started").map((e) => e.agent));
    return mesh.agents.every((a) => by.has(a.id));
  }, { what: "the monitor to hear a task start on each of the 3 agents" });
});

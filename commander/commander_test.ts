import {
  LEASE_COMMIT_PROTOCOL,
  LEASE_PROTOCOL,
  LeaseCommitRequestSchema,
  LeaseRequestSchema,
  type LeaseResponse,
  STOP_PROTOCOL,
  StopRequestSchema,
  type TaskStatus,
  TOPOLOGIES_PROTOCOL,
  TopologiesRequestSchema,
  type TopologyRecord,
} from "../agent/wire/mod.ts";
import * as v from "valibot";
import {
  createMeshNode,
  createSwarmKey,
  handleRequests,
  type Member,
  type MeshNode,
  VIEW_PROTOCOL,
} from "../mesh/mod.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../tests/_assert.ts";
import { activateTopology, type CommanderInit, recoverTopology } from "./commander.ts";
import { CommanderError } from "./errors.ts";
import { waitFor } from "../tests/_wait.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];

/** What a scripted agent does with its n-th lease request (from 0). */
type LeasePolicy = (n: number) => "grant" | "refuse" | "fail";

/**
 * An agent as the commander sees it over the wire: real mesh nodes on 127.0.0.1 serving the lease, stop,
 * view and topology protocols, with the agent's decisions scripted. The first one is the `via` agent.
 */
interface FakeAgent {
  node: MeshNode;
  host: string;
  free: number;
  /** Free slots the view shows whatever the agent has (a view that stays stale), when set. */
  offered?: number;
  policy: LeasePolicy;
  /** Paths of every lease request, in order. */
  leases: string[][];
  /** The epoch of every lease request, in order. */
  epochs: number[];
  stops: { topologyId: string; paths?: string[] }[];
  /** Commits and releases of held leases, in order. */
  commits: { hold: string; commit: boolean }[];
}

async function startAgents(free: number[], policies: LeasePolicy[] = []) {
  const swarmKey = createSwarmKey();
  const agents: FakeAgent[] = [];
  const records = new Map<string, TopologyRecord>();
  const puts: TopologyRecord[] = [];
  for (const [i, n] of free.entries()) {
    const node = await createMeshNode({ swarmKey, listen: LISTEN });
    agents.push({
      node,
      host: `h${i}`,
      free: n,
      policy: policies[i] ?? (() => "grant"),
      leases: [],
      epochs: [],
      stops: [],
      commits: [],
    });
  }
  const member = (a: FakeAgent): Member => ({
    id: a.node.peerId,
    host: a.host,
    addrs: a.node.addresses(),
    slots: { total: 8, free: a.offered ?? a.free },
    version: "test",
    load: 0,
    startedAt: 1,
    gpus: 0,
    labels: {},
    group: "",
    state: "alive",
    lastSeen: 1,
  });
  for (const a of agents) {
    await handleRequests(a.node, LEASE_PROTOCOL, {
      schema: LeaseRequestSchema,
      maxBytes: 64 * 1024 * 1024,
      handler: (req): LeaseResponse => {
        const n = a.leases.push(req.tasks.map((t) => t.path)) - 1;
        a.epochs.push(req.epoch);
        const what = a.policy(n);
        if (what === "fail") throw new Error(`agent ${a.host} broke`);
        if (what === "refuse" || req.tasks.length > a.free) {
          // Another commander took the slots meanwhile: they are gone from the next view too.
          a.free = 0;
          return { granted: false, agent: a.node.peerId, reason: "no free slots", free: 0 };
        }
        a.free -= req.tasks.length;
        const tasks = req.tasks.map((t) => ({
          topologyId: req.topologyId,
          path: t.path,
          id: t.id,
          state: "running" as const,
          restarts: 0,
        }));
        if (!req.hold) return { granted: true, agent: a.node.peerId, tasks };
        const hold = `${a.host}-${n}`;
        holds.set(hold, tasks);
        return { granted: true, agent: a.node.peerId, tasks: [], hold };
      },
    });
    const holds = new Map<string, TaskStatus[]>();
    await handleRequests(a.node, LEASE_COMMIT_PROTOCOL, {
      schema: LeaseCommitRequestSchema,
      handler: (req) => {
        a.commits.push({ hold: req.hold, commit: req.commit });
        const tasks = holds.get(req.hold) ?? [];
        holds.delete(req.hold);
        if (!req.commit) a.free += tasks.length;
        return { ok: true, agent: a.node.peerId, tasks: req.commit ? tasks : [] };
      },
    });
    await handleRequests(a.node, STOP_PROTOCOL, {
      schema: StopRequestSchema,
      handler: (req) => {
        a.stops.push({ topologyId: req.topologyId, ...(req.paths ? { paths: req.paths } : {}) });
        return { agent: a.node.peerId, stopped: req.paths?.length ?? 0, killed: 0 };
      },
    });
  }
  const via = agents[0]!;
  await handleRequests(via.node, VIEW_PROTOCOL, {
    schema: v.object({}),
    handler: () => ({ from: via.node.peerId, members: agents.map(member) }),
  });
  await handleRequests(via.node, TOPOLOGIES_PROTOCOL, {
    schema: TopologiesRequestSchema,
    handler: (req) => {
      if (req.op === "put") {
        records.set(req.record.id, req.record);
        puts.push(req.record);
      }
      return { records: [...records.values()] };
    },
  });
  const commander = await createMeshNode({ swarmKey });
  const init: CommanderInit = { node: commander, via: via.node.addresses()[0]!, sessionId: "s" };
  return {
    agents,
    init,
    records,
    puts,
    async [Symbol.asyncDispose]() {
      await commander.stop();
      for (const a of agents) await a.node.stop();
    },
  };
}

const source = (n: number) => ({
  file: "t.xml",
  source: `<topology name="t">
  <decltask name="T"><exe>sleep 60</exe></decltask>
  <main name="main"><group name="g" n="${n}"><task>T</task></group></main>
</topology>`,
  vars: {},
});

const pathsOf = (n: number) => Array.from({ length: n }, (_, i) => `main/g/T_${i}`);

Deno.test("commander: tasks an agent refuses are placed again on another agent", async () => {
  // The first agent's view says 2 free, but it refuses: another commander took its slots.
  await using m = await startAgents([2, 2], [() => "refuse"]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  const res = await activateTopology(m.init, source(2), {});
  assertEquals(res.tasks.map((t) => t.agent), [b.node.peerId, b.node.peerId]);
  assertEquals(res.started, 2);
  assertEquals(a.leases, [pathsOf(2)], "asked once: then its view shows no room");
  assertEquals(b.leases, [pathsOf(2)], "the refused tasks, re-placed");
  assertEquals([a.epochs, b.epochs], [[1], [1]]);
  assertEquals(m.records.get("t")?.placement, { [b.node.peerId]: pathsOf(2) });
  assertEquals(m.records.get("t")?.epoch, 1);
});

Deno.test("commander: an agent whose lease request fails is not asked again, even if the view still shows room", async () => {
  await using m = await startAgents([4, 4], [() => "fail"]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  // Room for all on either: the plan fills the agents in view order, so the failing one is asked first.
  const res = await activateTopology(m.init, source(3), {});
  assertEquals(a.leases, [pathsOf(3)], "asked once: the failed agent is dead to this operation");
  assertEquals(b.leases, [pathsOf(3)]);
  assertEquals(a.free, 4, "the view still offered its slots");
  assertEquals(res.tasks.map((t) => t.path).sort(), pathsOf(3));
  assert(res.tasks.every((t) => t.agent === b.node.peerId));
  assertEquals(m.records.get("t")?.placement, { [b.node.peerId]: res.tasks.map((t) => t.path) });
});

Deno.test("commander: refused five times over, it gives up, says why, and records nothing", async () => {
  await using m = await startAgents([1]);
  const [a] = m.agents as [FakeAgent];
  // Its view keeps offering the slot it keeps refusing.
  a.offered = 1;
  a.policy = () => "refuse";
  const waits: number[] = [];
  const delay = (ms: number) => (waits.push(ms), Promise.resolve());
  const err = await assertRejects(
    () => activateTopology({ ...m.init, delay }, source(1), {}),
    CommanderError,
  );
  assertStringIncludes(err.message, "Cannot place 1 task(s): 1 task(s) refused 5 times");
  assertEquals(a.leases.length, 5, "one try and four re-placements");
  assertEquals(
    waits,
    [100, 200, 300, 400, 500],
    "a longer wait before each new view, the last before giving up",
  );
  assertEquals(err.placed, []);
  assertEquals(m.puts, [], "no record of a topology that does not run");
});

Deno.test("commander: what fits nowhere after a failure is refused whole: started tasks are stopped again", async () => {
  // One task fits on each agent; the second agent fails, and the first has no room left for its task.
  await using m = await startAgents([1, 1], [() => "grant", () => "fail"]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  const err = await assertRejects(() => activateTopology(m.init, source(2), {}), CommanderError);
  assertStringIncludes(err.message, "Cannot place 1 task(s)");
  assertStringIncludes(err.message, `the lease request to agent ${b.node.peerId} failed`);
  assertStringIncludes(err.message, `agent h1 broke`);
  assertEquals(err.placed.map((t) => t.agent), [a.node.peerId]);
  assertEquals(a.stops, [{ topologyId: "t", paths: a.leases[0]! }], "the one started is stopped");
  assertEquals(m.puts, []);
});

const deadRecord = (alive: string): TopologyRecord => ({
  id: "t",
  name: "t",
  epoch: 3,
  version: 7,
  commander: "old",
  state: "active",
  ...source(3),
  placement: { dead: ["main/g/T_0", "main/g/T_1"], [alive]: ["main/g/T_2"] },
  updatedAt: 1,
});

Deno.test("commander: recovery re-places a dead agent's tasks under the next epoch and records the takeover", async () => {
  await using m = await startAgents([2, 0]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  const res = await recoverTopology(m.init, deadRecord(b.node.peerId), "dead", {
    members: ["dead", a.node.peerId, b.node.peerId],
  });
  assertEquals(res.epoch, 4);
  assertEquals(res.placed.map((t) => [t.agent, t.path]), [
    [a.node.peerId, "main/g/T_0"],
    [a.node.peerId, "main/g/T_1"],
  ]);
  assertEquals(res.lost, []);
  assertEquals(res.reasons, []);
  assertEquals(a.epochs, [4], "leased under the new epoch, so agents refuse the old commander");
  assertEquals(b.leases, [], "the tasks still running stay where they are");
  const stored = m.records.get("t")!;
  assertEquals([stored.epoch, stored.version, stored.commander], [4, 8, m.init.node.peerId]);
  assertEquals(stored.placement, {
    [b.node.peerId]: ["main/g/T_2"],
    [a.node.peerId]: ["main/g/T_0", "main/g/T_1"],
  });
  assertEquals(stored.members, [a.node.peerId, b.node.peerId], "the dead agent leaves the membership");
});

Deno.test("commander: recovery that cannot place the dead agent's tasks keeps them as lost and still drops the agent", async () => {
  // One free slot for two tasks: the placement is refused whole, so nothing is leased.
  await using m = await startAgents([1, 0]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  const res = await recoverTopology(m.init, deadRecord(b.node.peerId), ["dead"], { epoch: 9 });
  assertEquals(res.epoch, 9, "the claimed epoch is used");
  assertEquals(res.placed, []);
  assertEquals(res.lost, ["main/g/T_0", "main/g/T_1"]);
  assertEquals(res.reasons.length, 1);
  assertStringIncludes(res.reasons[0]!, "Cannot place 2 task(s)");
  assertEquals([a.leases, b.leases], [[], []]);
  const stored = m.records.get("t")!;
  assertEquals([stored.epoch, stored.version], [9, 8]);
  assertEquals(
    stored.placement,
    { [b.node.peerId]: ["main/g/T_2"] },
    "the record no longer names the dead agent",
  );
  assertEquals(stored.members, undefined, "no membership given, none recorded");
});

Deno.test("commander: a restarted agent's missing paths are re-placed and leave its own placement", async () => {
  await using m = await startAgents([0, 1]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  const record: TopologyRecord = {
    ...deadRecord(a.node.peerId),
    placement: { [a.node.peerId]: ["main/g/T_0", "main/g/T_1"], [b.node.peerId]: ["main/g/T_2"] },
  };
  const res = await recoverTopology(m.init, record, [], {
    missing: { agent: a.node.peerId, paths: ["main/g/T_1"] },
  });
  assertEquals(res.placed.map((t) => [t.agent, t.path]), [[b.node.peerId, "main/g/T_1"]]);
  assertEquals(m.records.get("t")?.placement, {
    [a.node.peerId]: ["main/g/T_0"],
    [b.node.peerId]: ["main/g/T_2", "main/g/T_1"],
  });
});

/** A fake clock for the commander's waits between placements: each wait is pending until `advance`. */
function fakeDelays() {
  const waits: number[] = [];
  let pending: (() => void) | undefined;
  return {
    waits,
    get pending() {
      return pending !== undefined;
    },
    delay: (ms: number) =>
      new Promise<void>((resolve) => {
        waits.push(ms);
        pending = resolve;
      }),
    advance() {
      const r = pending!;
      pending = undefined;
      r();
    },
  };
}

Deno.test("commander: each re-placement waits longer (100 ms more each time) and asks nothing before the wait is over", async () => {
  await using m = await startAgents([1]);
  const [a] = m.agents as [FakeAgent];
  a.offered = 1;
  a.policy = (n) => {
    if (n < 2) return "refuse";
    a.free = 1; // the slots are back
    return "grant";
  };
  const clock = fakeDelays();
  const done = activateTopology({ ...m.init, delay: clock.delay }, source(1), {});
  for (const asked of [1, 2]) {
    await waitFor(() => clock.pending, { timeout: 30_000, what: `wait number ${asked}` });
    assertEquals(a.leases.length, asked, "no lease request while the clock stands still");
    clock.advance();
  }
  const res = await done;
  assertEquals(clock.waits, [100, 200]);
  assertEquals(a.leases.length, 3);
  assertEquals(res.tasks.map((t) => t.path), ["main/g/T_0"]);
  assertEquals(m.records.get("t")?.placement, { [a.node.peerId]: ["main/g/T_0"] });
});

Deno.test("commander: with hold, every agent holds its lease first and the tasks start only once all are granted", async () => {
  await using m = await startAgents([1, 1]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  const res = await activateTopology(m.init, source(2), { hold: true });
  assertEquals([a.commits, b.commits], [[{ hold: "h0-0", commit: true }], [{ hold: "h1-0", commit: true }]]);
  // Held in the order the agents answered: compared by path.
  assertEquals(res.tasks.map((t) => [t.agent, t.path]).sort((x, y) => x[1]! < y[1]! ? -1 : 1), [
    [a.node.peerId, "main/g/T_0"],
    [b.node.peerId, "main/g/T_1"],
  ]);
  assertEquals(m.records.get("t")?.placement, {
    [a.node.peerId]: ["main/g/T_0"],
    [b.node.peerId]: ["main/g/T_1"],
  });
});

Deno.test("commander: with hold, a topology that does not fit starts nothing: the held leases are released", async () => {
  await using m = await startAgents([1, 1], [() => "grant", () => "fail"]);
  const [a, b] = m.agents as [FakeAgent, FakeAgent];
  const err = await assertRejects(
    () => activateTopology(m.init, source(2), { hold: true }),
    CommanderError,
  );
  assertStringIncludes(err.message, `the lease request to agent ${b.node.peerId} failed`);
  assertEquals(err.placed, [], "nothing ran, even briefly");
  assertEquals(a.commits, [{ hold: "h0-0", commit: false }]);
  assertEquals(a.free, 1, "its slot is free again");
  assertEquals([a.stops, b.stops], [[], []], "nothing to stop");
  assertEquals(m.puts, []);
});

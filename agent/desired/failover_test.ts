import {
  EventHub,
  type Member,
  type Membership,
  type MembershipEvent,
  type MeshNode,
} from "../../mesh/mod.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { FakeClock } from "../../tests/_fake_clock.ts";
import { waitFor } from "../../tests/_wait.ts";
import { ClaimTable } from "./claims.ts";
import type { DesiredState } from "./desired_state.ts";
import { EventBatcher } from "../event_batcher.ts";
import { type FailoverInit, startFailover } from "./failover.ts";
import { createLogger } from "../log.ts";
import type { TopologyRecord } from "../wire/mod.ts";

function member(id: string, state: Member["state"]): Member {
  return {
    id,
    host: `host-${id}`,
    addrs: [`/ip4/10.9.0.1/tcp/1/p2p/${id}`],
    slots: { total: 1, free: 0 },
    version: "0",
    load: 0,
    startedAt: 0,
    gpus: 0,
    labels: {},
    group: "",
    state,
    lastSeen: 0,
  };
}

/** One agent's failover over a view and a record given by the test (no mesh). */
function world(view: Member[], record: TopologyRecord, me = "a") {
  const events = new EventHub<MembershipEvent>();
  const changes = new EventHub<TopologyRecord>();
  const pinged: string[] = [];
  // No peer answers a ping: the lost agents are lost indeed.
  const ping = (peer: string) => (pinged.push(peer), Promise.reject(new Error("no answer")));
  const node = { peerId: me, addresses: () => [], ping } as unknown as MeshNode;
  const membership = { events, members: () => view } as unknown as Membership;
  const desired = { changes, get: () => record, records: () => [record] } as unknown as DesiredState;
  const published: Record<string, unknown>[] = [];
  const batcher = { add: (e: Record<string, unknown>) => published.push(e) } as unknown as EventBatcher;
  return { events, node, membership, desired, batcher, published, pinged };
}

const record: TopologyRecord = {
  id: "t",
  name: "t",
  epoch: 1,
  version: 1,
  commander: "x",
  state: "active",
  source: "",
  file: "t.xml",
  vars: {},
  placement: { a: ["p0"], b: ["p1"], c: ["p2"] },
  updatedAt: 0,
  members: ["a", "b", "c"],
};

/** A failover on `w` as agent "a" of session "s", with `over` on top. */
function failoverOf(w: ReturnType<typeof world>, over: Partial<FailoverInit> = {}) {
  return startFailover({
    node: w.node,
    membership: w.membership,
    desired: w.desired,
    claims: new ClaimTable(),
    events: w.batcher,
    log: createLogger({ stderr: false }),
    sessionId: "s",
    host: "host-a",
    ...over,
  });
}

Deno.test("failover: a side seeing 1 of 3 re-places nothing, reports it, and fences itself after the set time", async () => {
  const w = world([member("a", "alive"), member("b", "dead"), member("c", "dead")], record);
  const stopped: string[] = [];
  using failover = failoverOf(w, {
    stopOnMinorityAfterMs: 100,
    stopLocal: (id) => Promise.resolve(void stopped.push(id)),
    holdsTasks: () => true,
  });
  w.events.emit({ type: "agent:dead", id: "b", host: "host-b", at: Date.now() });
  await waitFor(() => failover.minority().length === 1, { timeout: 5_000, what: "the minority standing" });
  const [m] = failover.minority();
  assertEquals([m!.topologyId, m!.sees, m!.of, m!.need], ["t", 1, 3, 2]);
  assertEquals(w.published.filter((e) => e.type === "tasks:lost").length, 0);
  assertEquals(w.published.find((e) => e.type === "topology:minority")?.sees, 1);
  await waitFor(() => stopped.length === 1, { timeout: 5_000, what: "the minority to stop its own tasks" });
  assertEquals(stopped, ["t"]);
});

Deno.test("failover: without --stop-on-minority-after a minority keeps its tasks", async () => {
  const w = world([member("a", "alive"), member("b", "dead"), member("c", "dead")], record);
  const stopped: string[] = [];
  using failover = failoverOf(w, {
    stopLocal: (id) => Promise.resolve(void stopped.push(id)),
  });
  w.events.emit({ type: "agent:dead", id: "c", host: "host-c", at: Date.now() });
  await waitFor(() => failover.minority().length === 1, { timeout: 5_000, what: "the minority standing" });
  assertEquals(stopped, []);
});

Deno.test("failover: a minority fences itself only once the set time has passed on the clock", async () => {
  const w = world([member("a", "alive"), member("b", "dead"), member("c", "dead")], record);
  const stopped: string[] = [];
  const clock = new FakeClock();
  using failover = failoverOf(w, {
    stopOnMinorityAfterMs: 60_000,
    stopLocal: (id) => Promise.resolve(void stopped.push(id)),
    holdsTasks: () => true,
    clock,
  });
  w.events.emit({ type: "agent:dead", id: "b", host: "host-b", at: clock.now() });
  await waitFor(() => failover.minority().length === 1, { timeout: 5_000, what: "the minority standing" });
  assertEquals(failover.minority()[0]!.since, 1_000_000, "the standing is timed on the clock");
  assertEquals(clock.timers.size, 1, "the fence is set");
  clock.tick(59_999);
  assertEquals(stopped, [], "not before the set time");
  clock.tick(1);
  assertEquals(stopped, ["t"]);
  assertEquals(w.published.filter((e) => e.type === "tasks:fenced").map((e) => e.at), [1_060_000]);
});

Deno.test("failover: a minority that sees a majority again before the set time is not fenced", async () => {
  const view = [member("a", "alive"), member("b", "dead"), member("c", "dead")];
  const w = world(view, record);
  const stopped: string[] = [];
  const clock = new FakeClock();
  using failover = failoverOf(w, {
    stopOnMinorityAfterMs: 60_000,
    stopLocal: (id) => Promise.resolve(void stopped.push(id)),
    holdsTasks: () => true,
    clock,
  });
  w.events.emit({ type: "agent:dead", id: "b", host: "host-b", at: clock.now() });
  await waitFor(() => failover.minority().length === 1, { timeout: 5_000, what: "the minority standing" });
  clock.tick(30_000);
  // The partition heals: every agent is seen again.
  view[1] = member("b", "alive");
  view[2] = member("c", "alive");
  w.events.emit({ type: "agent:alive", id: "b", host: "host-b", at: clock.now() });
  await waitFor(() => failover.minority().length === 0, { timeout: 5_000, what: "the majority again" });
  assertEquals(clock.timers.size, 0, "the fence is cleared");
  clock.tick(60_000);
  assertEquals(stopped, []);
});

Deno.test("failover: a dead agent's tasks count as lost only lostAfterMs after its death, on the clock", async () => {
  const w = world([member("a", "alive"), member("b", "alive"), member("c", "dead")], record);
  const clock = new FakeClock();
  const claims = new ClaimTable();
  using _failover = failoverOf(w, {
    claims,
    lostAfterMs: 30_000,
    clock,
  });
  w.events.emit({ type: "agent:dead", id: "c", host: "host-c", at: clock.now() });
  await waitFor(() => clock.timers.size === 1, { timeout: 5_000, what: "the judgement to be put off" });
  assertEquals([w.pinged, claims.held("t")], [[], undefined], "not lost yet: nobody is asked");
  clock.tick(29_999);
  assertEquals(w.pinged, []);
  clock.tick(1);
  // Lost now: the actor pings it (no answer) and claims the next epoch before re-placing anything.
  await waitFor(() => claims.held("t"), { timeout: 5_000, what: "the claim of the next epoch" });
  assertEquals(w.pinged, ["c"]);
  assertEquals(claims.held("t"), { epoch: 2, claimant: "a" });
});

Deno.test("failover: of a majority side, only the alive agent with the lowest ID acts", async () => {
  const view = [member("a", "alive"), member("b", "alive"), member("c", "dead")];
  const sides = ["a", "b"].map((me) => {
    const w = world(view, record, me);
    const claims = new ClaimTable();
    const failover = startFailover({
      node: w.node,
      membership: w.membership,
      desired: w.desired,
      claims,
      events: w.batcher,
      log: createLogger({ stderr: false }),
      sessionId: "s",
      host: `host-${me}`,
      clock: new FakeClock(),
    });
    return { w, claims, failover };
  });
  try {
    for (const s of sides) s.w.events.emit({ type: "agent:dead", id: "c", host: "host-c", at: 0 });
    const [a, b] = sides as [typeof sides[0], typeof sides[0]];
    await waitFor(() => a.claims.held("t"), { timeout: 5_000, what: "agent a to claim the next epoch" });
    assertEquals(a.w.pinged, ["c"]);
    // b's judgement involves no I/O, so it is over by now: it leaves the work to a.
    assertEquals(b.w.pinged, [], "b does not act");
    assertEquals(b.claims.held("t"), undefined);
  } finally {
    for (const s of sides) s.failover.close();
  }
});

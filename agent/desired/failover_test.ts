import {
  EventHub,
  type Member,
  type Membership,
  type MembershipEvent,
  type MeshNode,
} from "../../mesh/mod.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import { ClaimTable } from "./claims.ts";
import type { DesiredState } from "./desired_state.ts";
import { EventBatcher } from "../event_batcher.ts";
import { startFailover } from "./failover.ts";
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
function world(view: Member[], record: TopologyRecord) {
  const events = new EventHub<MembershipEvent>();
  const changes = new EventHub<TopologyRecord>();
  const node = { peerId: "a", addresses: () => [] } as unknown as MeshNode;
  const membership = { events, members: () => view } as unknown as Membership;
  const desired = { changes, get: () => record, records: () => [record] } as unknown as DesiredState;
  const published: Record<string, unknown>[] = [];
  const batcher = { add: (e: Record<string, unknown>) => published.push(e) } as unknown as EventBatcher;
  return { events, node, membership, desired, batcher, published };
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

Deno.test("failover: a side seeing 1 of 3 re-places nothing, reports it, and fences itself after the set time", async () => {
  const w = world([member("a", "alive"), member("b", "dead"), member("c", "dead")], record);
  const stopped: string[] = [];
  using failover = startFailover({
    node: w.node,
    membership: w.membership,
    desired: w.desired,
    claims: new ClaimTable(),
    events: w.batcher,
    log: createLogger({ stderr: false }),
    sessionId: "s",
    host: "host-a",
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
  using failover = startFailover({
    node: w.node,
    membership: w.membership,
    desired: w.desired,
    claims: new ClaimTable(),
    events: w.batcher,
    log: createLogger({ stderr: false }),
    sessionId: "s",
    host: "host-a",
    stopLocal: (id) => Promise.resolve(void stopped.push(id)),
  });
  w.events.emit({ type: "agent:dead", id: "c", host: "host-c", at: Date.now() });
  await waitFor(() => failover.minority().length === 1, { timeout: 5_000, what: "the minority standing" });
  assertEquals(stopped, []);
});

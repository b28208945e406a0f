import { createMeshNode, createSwarmKey, Membership, type MeshNode } from "../../mesh/mod.ts";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { createLogger } from "../log.ts";
import type { TopologyRecord } from "../wire/mod.ts";
import { DesiredState } from "./desired_state.ts";
import { syncDesiredOnDigest, TOPOLOGIES_DIGEST } from "./desired_sync.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];

const rec = (over: Partial<TopologyRecord> = {}): TopologyRecord => ({
  id: "t",
  name: "t",
  epoch: 1,
  version: 1,
  commander: "c1",
  state: "active",
  source: "<topology/>",
  file: "t.xml",
  vars: {},
  placement: {},
  updatedAt: 1_000,
  ...over,
});

/**
 * One agent's side: its records, its membership (not started: the test plays the probes and acks whose
 * digests it hears), the sync under test on a fake clock, and every pull it made.
 */
async function side(node: MeshNode) {
  const desired = new DesiredState(node);
  await desired.start();
  const membership = new Membership({ node });
  const pulls: string[] = [];
  const inFlight: Promise<number>[] = [];
  // Counts the pulls; each still goes to the peer over the wire.
  const syncFrom = desired.syncFrom.bind(desired);
  desired.syncFrom = (peer, options) => {
    pulls.push(peer);
    const p = syncFrom(peer, options);
    inFlight.push(p);
    return p;
  };
  let now = 1_000_000;
  const stop = syncDesiredOnDigest({
    node,
    membership,
    desired,
    log: createLogger({ stderr: false }),
    minIntervalMs: 5_000,
    now: () => now,
  });
  return {
    node,
    desired,
    pulls,
    /** A probe or ack from `peer` carrying `digest` (default: the peer's own; `null`: no topologies digest). */
    hear(peer: { node: MeshNode; desired: DesiredState }, digest: string | null = peer.desired.digest()) {
      const digests: Record<string, string> = digest === null ? { kv: "1" } : { [TOPOLOGIES_DIGEST]: digest };
      membership.digests.emit({ id: peer.node.peerId, digests });
    },
    /** Every pull started so far, answered. */
    settled: () => Promise.all(inFlight),
    advance(ms: number) {
      now += ms;
    },
    async [Symbol.asyncDispose]() {
      stop();
      desired.stop();
      await membership.stop();
    },
  };
}

async function pair() {
  const swarmKey = createSwarmKey();
  const n1 = await createMeshNode({ swarmKey, listen: LISTEN });
  const n2 = await createMeshNode({ swarmKey, listen: LISTEN });
  // Each pulls from the other by peer ID: each knows the other's address.
  await n2.dial(n1.addresses()[0]!);
  await n1.dial(n2.addresses()[0]!);
  const a = await side(n1);
  const b = await side(n2);
  return {
    a,
    b,
    async [Symbol.asyncDispose]() {
      await a[Symbol.asyncDispose]();
      await b[Symbol.asyncDispose]();
      await n1.stop();
      await n2.stop();
    },
  };
}

Deno.test("desired sync: two agents with different records converge, and equal digests exchange nothing more", async () => {
  await using p = await pair();
  const { a, b } = p;
  a.desired.merge(rec({ version: 5 }));
  a.desired.merge(rec({ id: "u", name: "u" }));
  b.desired.merge(rec({ version: 2 }));
  b.desired.merge(rec({ id: "w", name: "w" }));
  assert(a.desired.digest() !== b.desired.digest());
  a.hear(b);
  b.hear(a);
  assertEquals([a.pulls, b.pulls], [[], []], "one difference may be gossip still in flight");
  a.hear(b);
  b.hear(a);
  assertEquals([a.pulls, b.pulls], [[b.node.peerId], [a.node.peerId]], "the second in a row pulls");
  await Promise.all([a.settled(), b.settled()]);
  for (const s of [a, b]) {
    assertEquals(s.desired.records().map((r) => [r.id, r.version]).sort(), [["t", 5], ["u", 1], ["w", 1]]);
  }
  assertEquals(a.desired.digest(), b.desired.digest());
  a.advance(60_000);
  b.advance(60_000);
  for (let i = 0; i < 5; i++) {
    a.hear(b);
    b.hear(a);
  }
  assertEquals([a.pulls.length, b.pulls.length], [1, 1], "equal digests: no more pulls");
});

Deno.test("desired sync: a digest that keeps differing pulls at most once per interval, timed on the clock", async () => {
  await using p = await pair();
  const { a, b } = p;
  b.desired.merge(rec());
  // A digest that no merge can match (a peer whose records keep changing, say).
  const stale = "0".repeat(32);
  a.hear(b, stale);
  a.hear(b, stale);
  assertEquals(a.pulls.length, 1);
  await a.settled();
  assertEquals(a.desired.get("t")?.version, 1, "the pull brought the peer's record");
  a.advance(4_999);
  a.hear(b, stale);
  a.hear(b, stale);
  assertEquals(a.pulls.length, 1, "within the interval the peer is not asked again");
  a.advance(1);
  a.hear(b, stale);
  assertEquals(a.pulls.length, 2, "once the interval is over it is");
  await a.settled();
});

Deno.test("desired sync: an equal digest, or none, between two differing ones starts the count again", async () => {
  await using p = await pair();
  const { a, b } = p;
  b.desired.merge(rec());
  const differs = "f".repeat(32);
  a.hear(b, differs);
  a.hear(b, a.desired.digest());
  a.hear(b, differs);
  assertEquals(a.pulls, [], "not twice in a row");
  a.hear(b, differs);
  assertEquals(a.pulls, [b.node.peerId]);
  await a.settled();
  a.advance(10_000);
  // A peer that sends no topologies digest (an older agent) says nothing about its records.
  a.hear(b, null);
  a.hear(b, differs);
  assertEquals(a.pulls.length, 1, "a probe without the digest breaks the run too");
  a.hear(b, differs);
  assertEquals(a.pulls.length, 2);
  await a.settled();
});

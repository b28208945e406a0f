import { lpStream } from "@libp2p/utils";
import * as v from "valibot";
import { assert, assertEquals, assertRejects } from "../tests/_assert.ts";
import { waitFor } from "../tests/_wait.ts";
import { createMeshNode, createSwarmKey, encode, startDirect } from "./mod.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];
const PROTOCOL = "/test/direct/1";
const Msg = v.object({ n: v.number() });

Deno.test("direct: a burst arrives in order over one stream", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey });
  const got: { n: number; from: string }[] = [];
  await using _rx = await startDirect({
    node: a,
    protocol: PROTOCOL,
    schema: Msg,
    onMessage: (m, from) => got.push({ n: m.n, from }),
  });
  await using tx = await startDirect({ node: b, protocol: PROTOCOL, schema: Msg });
  await b.dial(a.addresses()[0]!);
  let streams = 0;
  await Promise.all(Array.from({ length: 2_000 }, (_, n) => tx.send(a.peerId, { n })));
  await waitFor(() => got.length === 2_000, { timeout: 10_000, what: "every message" });
  assertEquals(got.map((g) => g.n), Array.from({ length: 2_000 }, (_, n) => n));
  assert(got.every((g) => g.from === b.peerId));
  // One stream: the connection holds a single outbound stream of the protocol.
  for (const c of b.libp2p.getConnections()) {
    streams += c.streams.filter((s) => s.protocol === PROTOCOL).length;
  }
  assertEquals(streams, 1);
});

Deno.test("direct: a malformed message is counted and skipped, not the frame around it", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey });
  const got: number[] = [];
  await using _rx = await startDirect({
    node: a,
    protocol: PROTOCOL,
    schema: Msg,
    onMessage: (m) => got.push(m.n),
  });
  const stream = await b.openStream(a.addresses()[0]!, PROTOCOL);
  const lp = lpStream(stream);
  await lp.write(encode([{ n: 1 }, { n: "two" }, { n: 3 }]));
  await lp.write(encode("not a list"));
  await lp.write(encode([{ n: 4 }]));
  await waitFor(() => got.length === 3, { timeout: 5_000, what: "the well-formed messages" });
  assertEquals(got, [1, 3, 4]);
  assertEquals(a.counters.malformed, 2);
  await stream.close();
});

Deno.test("direct: a send that cannot reach its peer rejects; one to itself needs no stream", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey, listen: LISTEN });
  const got: number[] = [];
  await using da = await startDirect({
    node: a,
    protocol: PROTOCOL,
    schema: Msg,
    onMessage: (m) => got.push(m.n),
    openTimeoutMs: 2_000,
  });
  await da.send(a.peerId, { n: 7 });
  await waitFor(() => got.length === 1, { timeout: 1_000, what: "the message to itself" });
  assertEquals(got, [7]);
  // b serves nothing: the stream cannot be negotiated.
  await a.dial(b.addresses()[0]!);
  await assertRejects(() => da.send(b.peerId, { n: 8 }), Error);
  // After a failure the next send tries again (and fails the same way, not hanging).
  await assertRejects(() => da.send(b.peerId, { n: 9 }), Error);
});

import { assertEquals, assertRejects } from "../tests/_assert.ts";
import { waitFor } from "../tests/_wait.ts";
import * as v from "valibot";
import {
  createMeshNode,
  createSwarmKey,
  handleRequests,
  RemoteError,
  request,
  startMembership,
} from "./mod.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];

Deno.test("mesh: two agents with one swarm key see each other alive", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey, listen: LISTEN });
  const self = () => ({ host: "h", slots: { total: 1, free: 1 }, version: "t", load: 0 });
  await using va = await startMembership({
    node: a,
    self,
    timing: { probeIntervalMs: 200, probeTimeoutMs: 100 },
  });
  await using vb = await startMembership({
    node: b,
    self,
    timing: { probeIntervalMs: 200, probeTimeoutMs: 100 },
  });
  await b.dial(a.addresses()[0]!);
  await waitFor(() => va.members().length === 2 && vb.members().length === 2, { timeout: 10_000 });
  assertEquals(va.members().map((m) => m.state), ["alive", "alive"]);
});

Deno.test("mesh: a peer with another swarm key cannot connect: the encryption handshake fails", async () => {
  await using a = await createMeshNode({ swarmKey: createSwarmKey(), listen: LISTEN });
  await using b = await createMeshNode({ swarmKey: createSwarmKey(), listen: LISTEN });
  // Under the wrong pre-shared key each side decrypts garbage, so Noise's handshake fails: at once when a
  // garbled frame fails to decrypt, or after libp2p's upgrade timeout (~5 s) when it claims a length that
  // never arrives. The dial's own signal is longer, so a dial that merely runs out of time fails the test.
  const err = await assertRejects(
    () => b.dial(a.addresses()[0]!, { signal: AbortSignal.timeout(30_000) }),
    Error,
  );
  assertEquals(err.name, "EncryptionFailedError", String(err));
  assertEquals([a.connectedPeers(), b.connectedPeers()], [[], []]);
});

Deno.test("mesh: a request gets its response; a handler error comes back as RemoteError", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey });
  await handleRequests(a, "/test/echo/1", {
    schema: v.object({ n: v.number() }),
    handler: ({ n }) => {
      if (n < 0) throw new RangeError("Negative");
      return { twice: n * 2 };
    },
  });
  const addr = a.addresses()[0]!;
  const out = await request(b, addr, "/test/echo/1", { n: 21 }, { schema: v.object({ twice: v.number() }) });
  assertEquals(out, { twice: 42 });
  const err = await assertRejects(
    () => request(b, addr, "/test/echo/1", { n: -1 }, { schema: v.unknown() }),
    RemoteError,
  );
  assertEquals(err.remoteName, "RangeError");
});

Deno.test("mesh: a malformed request is dropped and counted, and the node keeps serving", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey });
  await handleRequests(a, "/test/echo/1", {
    schema: v.object({ n: v.number() }),
    handler: ({ n }) => n,
    maxBytes: 1024,
  });
  const addr = a.addresses()[0]!;
  // Neither reaches the handler: the caller is told why, by name.
  const badSchema = await assertRejects(
    () => request(b, addr, "/test/echo/1", { n: "x" }, { schema: v.unknown() }),
    RemoteError,
  );
  assertEquals(badSchema.remoteName, "MalformedMessageError", String(badSchema));
  const tooBig = await assertRejects(
    () => request(b, addr, "/test/echo/1", { n: 1, pad: "x".repeat(4096) }, { schema: v.unknown() }),
    RemoteError,
  );
  assertEquals(tooBig.remoteName, "MessageTooLargeError", String(tooBig));
  assertEquals(a.counters.malformed, 2);
  assertEquals(await request(b, addr, "/test/echo/1", { n: 7 }, { schema: v.number() }), 7);
});

Deno.test("mesh: a request by peer ID reaches a member this node never linked to, at the addresses it announced", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey, listen: LISTEN });
  await using c = await createMeshNode({ swarmKey, listen: LISTEN });
  const self = () => ({ host: "h", slots: { total: 1, free: 1 }, version: "t", load: 0 });
  // One link each and no random probes: a and b know each other from c's gossip only.
  const timing = {
    probeIntervalMs: 200,
    probeTimeoutMs: 100,
    linksLow: 1,
    linksHigh: 1,
    randomProbeEvery: 1e9,
  };
  await using va = await startMembership({ node: a, self, timing });
  await using _vb = await startMembership({ node: b, self, timing });
  await using _vc = await startMembership({ node: c, self, timing });
  await handleRequests(b, "/test/echo/1", { schema: v.object({ n: v.number() }), handler: ({ n }) => n + 1 });
  await a.dial(c.addresses()[0]!);
  await b.dial(c.addresses()[0]!);
  await waitFor(() => va.members().some((m) => m.id === b.peerId && m.state === "alive"), {
    timeout: 10_000,
    what: "b in a's view",
  });
  assertEquals(
    a.libp2p.getConnections().map((x) => x.remotePeer.toString()),
    [c.peerId],
    "a links to c only",
  );
  assertEquals(await request(a, b.peerId, "/test/echo/1", { n: 41 }, { schema: v.number() }), 42);
});

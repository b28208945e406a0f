import { lpStream } from "@libp2p/utils";
import * as v from "valibot";
import { assertEquals } from "../tests/_assert.ts";
import { waitFor } from "../tests/_wait.ts";
import { decode, encode } from "./codec.ts";
import { createMeshNode, createSwarmKey, handleRequests, request } from "./mod.ts";
import { PIPE_PROTOCOL } from "./_rpc_pipe.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];

Deno.test("rpc: requests in flight share one stream; a slow one holds up no other", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey });
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  let arrived = 0;
  await handleRequests(a, "/test/slow/1", {
    schema: v.object({ n: v.number() }),
    handler: async ({ n }) => {
      arrived++;
      if (n < 100) await held;
      return n * 2;
    },
  });
  const addr = a.addresses()[0]!;
  const slow = Array.from(
    { length: 100 },
    (_, n) => request(b, addr, "/test/slow/1", { n }, { schema: v.number() }),
  );
  try {
    await waitFor(() => arrived === 100, { timeout: 10_000, what: "100 requests at the handler" });
    const streams = () =>
      b.libp2p.getConnections().flatMap((c) => c.streams).map((s) => s.protocol).filter((p) =>
        p === PIPE_PROTOCOL || p === "/test/slow/1"
      );
    assertEquals(streams(), [PIPE_PROTOCOL], "one stream for 100 requests in flight");
    // A request behind 100 held ones is answered at once.
    assertEquals(await request(b, addr, "/test/slow/1", { n: 100 }, { schema: v.number() }), 200);
  } finally {
    release();
    await Promise.allSettled(slow);
  }
  assertEquals((await Promise.all(slow)).slice(0, 3), [0, 2, 4]);
});

Deno.test("rpc: large exchanges and protocols served without the pipe get a stream of their own", async () => {
  const swarmKey = createSwarmKey();
  await using a = await createMeshNode({ swarmKey, listen: LISTEN });
  await using b = await createMeshNode({ swarmKey });
  await handleRequests(a, "/test/echo/1", {
    schema: v.object({ s: v.string() }),
    handler: ({ s }) => s.length,
    maxBytes: 4 * 1024 * 1024,
  });
  // A protocol served the way a peer of an earlier version serves it: one frame each way on its own stream.
  await a.libp2p.handle("/test/raw/1", async (stream) => {
    const lp = lpStream(stream);
    const req = decode((await lp.read()).subarray(), v.object({ n: v.number() }));
    await lp.write(encode({ ok: true, value: req.n + 1 }));
    await stream.close();
  });
  const addr = a.addresses()[0]!;
  assertEquals(await request(b, addr, "/test/raw/1", { n: 41 }, { schema: v.number() }), 42);
  const big = "x".repeat(1024 * 1024);
  assertEquals(await request(b, addr, "/test/echo/1", { s: big }, { schema: v.number() }), big.length);
  assertEquals(
    await request(b, addr, "/test/echo/1", { s: "y" }, { schema: v.number(), maxBytes: 64 * 1024 * 1024 }),
    1,
  );
  assertEquals(await request(b, addr, "/test/echo/1", { s: "z" }, { schema: v.number() }), 1);
  // Responses above the pipe's bulk threshold come back on streams of their own, small ones inline.
  await handleRequests(a, "/test/big/1", {
    schema: v.object({ n: v.number() }),
    handler: ({ n }) => "y".repeat(n),
  });
  const sizes = [10, 2 * 1024 * 1024, 100, 70 * 1024];
  const got = await Promise.all(
    sizes.map((n) => request(b, addr, "/test/big/1", { n }, { schema: v.string() })),
  );
  assertEquals(got.map((g) => g.length), sizes);
  assertEquals(b.counters.streamErrors + a.counters.streamErrors, 0);
});

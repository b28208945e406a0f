import { createServer } from "node:net";
import { assertEquals } from "../../tests/_assert.ts";
import { refusesConnections, tcpTargets } from "./_refused.ts";

Deno.test("refused: a port nobody listens on proves the process gone; a listening one does not", async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const addr = `/ip4/127.0.0.1/tcp/${port}/p2p/12D3KooW`;
  assertEquals(await refusesConnections([addr], { local: true }), false);
  await new Promise<void>((r) => server.close(() => r()));
  assertEquals(await refusesConnections([addr], { local: true }), true);
  // Loopback says nothing about an agent on another host.
  assertEquals(await refusesConnections([addr], { local: false }), false);
});

Deno.test("refused: only TCP multiaddrs are tried", () => {
  assertEquals(
    tcpTargets(["/ip4/10.0.0.2/tcp/7/p2p/x", "/ip4/10.0.0.2/udp/7", "/ip4/127.0.0.1/tcp/9"], false),
    [
      { host: "10.0.0.2", port: 7 },
    ],
  );
});

Deno.test("refused: addresses other than loopback prove nothing, whatever the runtime reports", async () => {
  const addr = "/ip4/192.0.2.1/tcp/9/p2p/12D3KooW";
  assertEquals(await refusesConnections([addr], { local: true, timeoutMs: 200 }), false);
});

/**
 * The `/metrics` endpoint of an agent (`--metrics HOST:PORT`): plain `node:http`, rendering on request.
 *
 * @module
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { AgentMetrics } from "./agent_metrics.ts";
import { MetricsListenError } from "./errors.ts";
import { formatHostPort, parseHostPort } from "./listen_address.ts";

/** A listening metrics endpoint. */
export interface MetricsServer extends AsyncDisposable {
  /** The bound `host:port` (port 0 resolved). */
  readonly address: string;
  close(): Promise<void>;
}

/** Options for {@linkcode startMetricsServer}. */
export interface MetricsServerInit {
  /** `HOST:PORT`; port 0 picks a free one. */
  listen: string;
  metrics: AgentMetrics;
  signal?: AbortSignal;
}

/** Serves `GET /metrics`; throws {@linkcode MetricsListenError} when it cannot listen. */
export async function startMetricsServer(init: MetricsServerInit): Promise<MetricsServer> {
  const { host, port } = parseHostPort(init.listen, "metrics address");
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" || (path !== "/metrics" && path !== "/")) {
      res.writeHead(path === "/metrics" ? 405 : 404, { "content-type": "text/plain" });
      res.end("Not found: metrics are at GET /metrics\n");
      return;
    }
    init.metrics.text().then((body) => {
      res.writeHead(200, { "content-type": init.metrics.contentType });
      res.end(body);
    }, (err) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`Metrics failed: ${err instanceof Error ? err.message : err}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (cause: NodeJS.ErrnoException) =>
      reject(
        new MetricsListenError(
          init.listen,
          `Cannot serve metrics on "${init.listen}": ${
            cause.code === "EADDRINUSE" ? "the port is in use; pick another, or port 0" : cause.message
          }`,
          { cause },
        ),
      );
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    });
  init.signal?.addEventListener("abort", () => void close(), { once: true });
  return {
    address: formatHostPort(bound.address, bound.port),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Proof that an agent process is gone: its host answers, and refuses connections to the agent's port.
 * A partition drops or cannot route packets (a timeout, "host unreachable"); only a live kernel with
 * nothing listening sends a reset. Bun reports "host unreachable" as ECONNREFUSED too, so a refusal counts
 * only on an address whose host is known reachable: another agent we see alive listens on the same IP
 * (or it is this host's loopback).
 *
 * @module
 */
import { connect } from "node:net";

/** Host and port of each TCP multiaddr (`/ip4/10.0.0.2/tcp/4001/p2p/…`), loopback ones only if `local`. */
export function tcpTargets(addrs: readonly string[], local: boolean): { host: string; port: number }[] {
  const out: { host: string; port: number }[] = [];
  for (const a of addrs) {
    const m = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d+)/.exec(a);
    if (!m) continue;
    const host = m[2]!;
    if (isLoopback(host) && !local) continue;
    out.push({ host, port: Number(m[3]) });
  }
  return out;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host.startsWith("127.") || host === "::1";
}

/** The IPs of TCP multiaddrs, loopback ones left out. */
export function hostsOf(addrs: readonly string[]): string[] {
  return tcpTargets(addrs, false).map((t) => t.host);
}

function tryConnect(host: string, port: number, timeoutMs: number): Promise<"refused" | "open" | "other"> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: "refused" | "open" | "other") => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done("other"), timeoutMs);
    socket.once("connect", () => done("open"));
    socket.once(
      "error",
      (err: NodeJS.ErrnoException) => done(err.code === "ECONNREFUSED" ? "refused" : "other"),
    );
  });
}

/**
 * True when some address on a reachable host refuses connections and none accepts one. `reachable`: IPs
 * that live agents (this one included) listen on; loopback counts when `local`.
 */
export async function refusesConnections(
  addrs: readonly string[],
  options: { local: boolean; reachable: ReadonlySet<string>; timeoutMs?: number },
): Promise<boolean> {
  const targets = tcpTargets(addrs, options.local).filter((t) =>
    options.reachable.has(t.host) || isLoopback(t.host)
  );
  if (targets.length === 0) return false;
  const results = await Promise.all(
    targets.map((t) => tryConnect(t.host, t.port, options.timeoutMs ?? 1_000)),
  );
  return results.includes("refused") && !results.includes("open");
}

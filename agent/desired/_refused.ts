/**
 * Proof that an agent process is gone: it runs on this host, and its loopback port refuses connections.
 * Loopback cannot be partitioned, so a refusal there means nothing listens: the process died, and its
 * tasks with it (the reaper). Other addresses prove nothing — a cut link times out or is unreachable, and
 * Bun reports "host unreachable" as ECONNREFUSED, so over a network a crash and a cut look alike.
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
 * True when an agent on this host (`local`) refuses connections on every loopback address it announced.
 * Other addresses are not tried (see the module comment).
 */
export async function refusesConnections(
  addrs: readonly string[],
  options: { local: boolean; timeoutMs?: number },
): Promise<boolean> {
  if (!options.local) return false;
  const targets = tcpTargets(addrs, true).filter((t) => isLoopback(t.host));
  if (targets.length === 0) return false;
  const results = await Promise.all(
    targets.map((t) => tryConnect(t.host, t.port, options.timeoutMs ?? 1_000)),
  );
  return results.every((r) => r === "refused");
}

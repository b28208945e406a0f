/**
 * `shoal agent`: run an agent in the foreground until SIGINT/SIGTERM.
 *
 * @module
 */
import type { Command } from "commander";
import { cpus } from "node:os";
import { join } from "node:path";
import { createLogger, startAgent } from "../../agent/mod.ts";
import { DEFAULT_TIMING, readSwarmKey } from "../../mesh/mod.ts";
import { multiaddr } from "@multiformats/multiaddr";
import { CliError, ExitCode } from "../errors.ts";
import {
  bytesOption,
  collect,
  executableFile,
  hostPortOption,
  intOption,
  keyValue,
  positiveNumberOption,
  secondsOption,
} from "../options.ts";
import { DEFAULT_CACHE_MAX } from "../../stage/mod.ts";
import { openSession, sessionDir } from "../session.ts";
import {
  DEFAULT_MIN_FREE_DISK,
  formatBytes,
  MAX_LOAD_LABEL,
  MIN_FREE_DISK_LABEL,
} from "../../pool/health.ts";

interface AgentOptions {
  dataDir?: string;
  swarmKey?: string;
  listen: string[];
  bootstrap: string[];
  slots: number;
  host?: string;
  group?: string;
  gpus: number;
  label: Record<string, string>;
  logFile?: string;
  quiet?: boolean;
  sessionId?: string;
  session: string;
  probeInterval: number;
  commandHandler?: string;
  commandTimeout?: number;
  orphanGrace?: number;
  metrics?: string;
  lostAfter?: number;
  stopOnMinorityAfter?: number;
  stageCacheMax?: number;
  minFreeDisk?: number;
  maxLoad?: number;
  idleTimeout?: number;
}

/** Registers `shoal agent`. */
export function registerAgent(program: Command): void {
  program.command("agent")
    .option("--data-dir <dir>", "data dir: peer identity, state file, logs (default: the session's)")
    .option("--swarm-key <file>", "swarm key of the mesh (default: the session's)")
    .option("--listen <multiaddr>", "address to listen on (repeatable)", collect, [])
    .option("--bootstrap <multiaddr>", "peer to reach the mesh through (repeatable)", collect, [])
    .option("--slots <n>", "task slots offered", intOption(1), cpus().length)
    .option("--host <name>", "host name to announce")
    .option("--group <name>", "group name to announce (DDS -g)")
    .option("--gpus <n>", "GPUs to announce", intOption(0), 0)
    .option("--label <key=value>", "label to announce, for custom requirements (repeatable)", keyValue, {})
    .option("--log-file <file>", "log file (default: <data-dir>/agent.log)")
    .option("--quiet", "log to the file only, not to stderr")
    .option("--session-id <id>", "session ID given to tasks (DDS_SESSION_ID)")
    .option(
      "--probe-interval <ms>",
      "membership probe period in milliseconds (a killed agent's links notice at once; probes find silent failures)",
      intOption(100),
      DEFAULT_TIMING.probeIntervalMs,
    )
    .option(
      "--command-handler <file>",
      "executable answering agent commands other than ping, status, getlog (see below)",
      executableFile,
    )
    .option("--command-timeout <seconds>", "longest run of the command handler (default: 30)", secondsOption)
    .option(
      "--metrics <host:port>",
      "serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a free one; default: none)",
      hostPortOption("metrics address"),
    )
    .option(
      "--orphan-grace <seconds>",
      "stop tasks of a commander gone this long before it recorded their topology (default: 15)",
      secondsOption,
    )
    .option(
      "--lost-after <seconds>",
      "how long after membership declared an agent dead its tasks count as lost and are re-placed (default: 0)",
      secondsOption,
    )
    .option(
      "--stop-on-minority-after <seconds>",
      "stop this agent's tasks of a topology once its side of a partition has seen no majority this long (default: never)",
      secondsOption,
    )
    .option(
      "--stage-cache-max <size>",
      "staged data (shoal stage put) kept before the least recently used name is evicted (default: $SHOAL_STAGE_CACHE_MAX, else 16GiB)",
      bytesOption,
    )
    .option(
      "--min-free-disk <size>",
      `take no leases while the data dir's disk has less free (e.g. 500MB, 2GB; 0: no check) (default: ` +
        `label ${MIN_FREE_DISK_LABEL}, which shoal up/submit/pool grow --min-free-disk set, else ${
          formatBytes(DEFAULT_MIN_FREE_DISK)
        })`,
      bytesOption,
    )
    .option(
      "--max-load <n>",
      `take no leases while the 1-minute load average stays above <n> (default: label ${MAX_LOAD_LABEL}, ` +
        "else no limit)",
      positiveNumberOption,
    )
    .option(
      "--idle-timeout <seconds>",
      "leave the mesh and exit after holding no lease this long while nothing waits in the pool's queue " +
        "(default: never; `shoal pool grow` sets 1800)",
      secondsOption,
    )
    .addHelpText(
      "after",
      `
Examples:
  $ shoal agent --swarm-key swarm.key --listen /ip4/0.0.0.0/tcp/7070 --slots 8
  $ shoal agent --swarm-key swarm.key --bootstrap /ip4/10.0.0.1/tcp/7070/p2p/12D3KooW... --slots 4
  $ shoal agent --swarm-key swarm.key --command-handler ./site-cmd.sh --command-timeout 60
  $ shoal agent --swarm-key swarm.key --metrics 0.0.0.0:9464
  $ shoal agent --swarm-key swarm.key --min-free-disk 2GB --max-load 16 --idle-timeout 600

Agent commands (\`shoal cmd send --condition agent VERB\`, or agent:<peer ID or host>): the agent answers
ping, status (JSON) and getlog [N] (the last N lines of its log, default 100) itself. Any other command
runs the --command-handler FILE with the payload on stdin and SHOAL_COMMAND_SENDER (also
SHOAL_COMMAND_SENDER_PATH, SHOAL_COMMAND_ID, SHOAL_AGENT_ID, SHOAL_AGENT_HOST) in its environment; its
stdout (up to 1 MiB) is the reply. A non-zero exit or a timeout replies "error: …" with stderr's tail; at
most 4 handlers run at once. Without a handler, other commands get an "error: unknown agent command" reply.

Failover: a dead agent's tasks are re-placed only by a side of the mesh that sees a strict majority of the
agents alive when the topology was last recorded (a crashed agent whose port refuses connections is not
counted); a minority keeps its own tasks running and re-places nothing (see README "What shoal guarantees").

SIGINT or SIGTERM stops it cleanly: it leaves the mesh, closes its streams and exits 0.`,
    )
    .action(async (opts: AgentOptions, cmd: Command) => {
      const global = cmd.optsWithGlobals<{ session: string }>();
      if (opts.commandTimeout === 0) {
        throw new CliError("--command-timeout must be more than 0 seconds", ExitCode.usage);
      }
      let dataDir = opts.dataDir;
      let swarmKeyFile = opts.swarmKey;
      for (const addr of [...opts.listen, ...opts.bootstrap]) {
        checkMultiaddr(addr, opts.bootstrap.includes(addr));
      }
      const bootstrap = [...opts.bootstrap];
      if (!swarmKeyFile) {
        const session = await openSession(global.session);
        swarmKeyFile = session.swarmKeyFile;
        dataDir ??= join(session.dir, "agents", `fg-${process.pid}`);
        if (bootstrap.length === 0) bootstrap.push(...await session.bootstrapAddrs());
      }
      dataDir ??= join(sessionDir(global.session), "agents", `fg-${process.pid}`);
      const logFile = opts.logFile ?? join(dataDir, "agent.log");
      const log = createLogger({ file: logFile, stderr: !opts.quiet });
      const swarmKey = await readSwarmKey(swarmKeyFile);
      // Handlers go in before the agent starts: a signal during start-up still means a clean stop.
      const stopRequested = new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log.info("signal received", { signal: sig });
          resolve();
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
      });
      const agent = await startAgent({
        dataDir,
        swarmKey,
        listen: opts.listen.length ? opts.listen : ["/ip4/0.0.0.0/tcp/0"],
        bootstrap,
        slots: opts.slots,
        gpus: opts.gpus,
        labels: opts.label,
        probeIntervalMs: opts.probeInterval,
        log,
        logFile,
        ...(opts.commandHandler ? { commandHandler: opts.commandHandler } : {}),
        ...(opts.commandTimeout !== undefined ? { commandTimeoutMs: opts.commandTimeout } : {}),
        ...(opts.orphanGrace !== undefined ? { orphanGraceMs: opts.orphanGrace } : {}),
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
        stageCacheMaxBytes: opts.stageCacheMax ?? stageCacheFromEnv(),
        ...(opts.lostAfter !== undefined ? { lostAfterMs: opts.lostAfter } : {}),
        ...(opts.stopOnMinorityAfter !== undefined
          ? { stopOnMinorityAfterMs: opts.stopOnMinorityAfter }
          : {}),
        health: {
          ...(opts.minFreeDisk !== undefined ? { minFreeDiskBytes: opts.minFreeDisk } : {}),
          ...(opts.maxLoad !== undefined ? { maxLoad: opts.maxLoad } : {}),
        },
        ...(opts.idleTimeout !== undefined ? { idleTimeoutMs: opts.idleTimeout } : {}),
        ...(opts.sessionId ? { sessionId: opts.sessionId } : {}),
        ...(opts.host ? { host: opts.host } : {}),
        ...(opts.group ? { group: opts.group } : {}),
      });
      await Promise.race([stopRequested, agent.idle]);
      await agent.stop();
    });
}

/** `SHOAL_STAGE_CACHE_MAX` (inherited from `shoal up`/`submit`), else the default. */
function stageCacheFromEnv(): number {
  const text = process.env.SHOAL_STAGE_CACHE_MAX;
  if (!text) return DEFAULT_CACHE_MAX;
  try {
    return bytesOption(text);
  } catch (err) {
    throw new CliError(`SHOAL_STAGE_CACHE_MAX: ${(err as Error).message}`, ExitCode.usage);
  }
}

/** Refuses a malformed address at once rather than retrying it forever. */
function checkMultiaddr(addr: string, needsPeerId: boolean): void {
  let ok = true;
  try {
    const ma = multiaddr(addr);
    if (needsPeerId && !ma.toString().includes("/p2p/")) ok = false;
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new CliError(
      `Address "${addr}" is not a libp2p multiaddr${needsPeerId ? " with a peer ID" : ""}; ` +
        `write it like /ip4/10.0.0.1/tcp/7070${
          needsPeerId ? "/p2p/12D3KooW…" : ""
        } (\`shoal info --json\` lists agents' addrs)`,
      ExitCode.usage,
    );
  }
}

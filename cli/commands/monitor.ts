/**
 * `shoal monitor`: join the mesh as a light peer and print every event.
 *
 * @module
 */
import type { Command } from "commander";
import { EVENTS_TOPIC, GossipEventSchema, startMembership } from "../../mesh/mod.ts";
import { ExitCode } from "../errors.ts";
import { shortId } from "../format.ts";
import { connectLightPeer } from "../light_peer.ts";
import { intOption, secondsOption } from "../options.ts";
import { openSession } from "../session.ts";

interface MonitorOptions {
  json?: boolean;
  timeout?: number;
  count?: number;
}

/** Registers `shoal monitor`. */
export function registerMonitor(program: Command): void {
  program.command("monitor")
    .description("Watch the mesh: agents joining, turning suspect, dying, leaving; task and topology events")
    .option("--json", "print one JSON object per line")
    .option("--timeout <seconds>", "stop after this long", secondsOption)
    .option("--count <n>", "stop after this many events", intOption(1))
    .addHelpText(
      "after",
      `
Examples:
  $ shoal monitor
  $ shoal monitor --json | jq -c 'select(.type == "agent:dead")'`,
    )
    .action(async (opts: MonitorOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const session = await openSession(name);
      await using peer = await connectLightPeer(session);
      const stop = new AbortController();
      let printed = 0;
      const print = (event: { type: string; at: number; [k: string]: unknown }) => {
        if (stop.signal.aborted) return;
        if (opts.json) {
          process.stdout.write(JSON.stringify(event) + "\n");
        } else {
          process.stdout.write(describe(event) + "\n");
        }
        if (opts.count && ++printed >= opts.count) stop.abort();
      };
      await using membership = await startMembership({ node: peer.node });
      membership.events.on(print);
      peer.node.subscribe(EVENTS_TOPIC, GossipEventSchema, (e) => {
        // Agents coalesce task events into batches; tools see one line per event.
        if (e.type === "batch" && Array.isArray(e.events)) {
          for (const inner of e.events as { type: string; at: number }[]) print({ by: e.by, ...inner });
        } else print(e);
      });
      const timer = opts.timeout !== undefined ? setTimeout(() => stop.abort(), opts.timeout) : undefined;
      process.once("SIGINT", () => {
        process.exitCode = ExitCode.interrupted;
        stop.abort();
      });
      process.once("SIGTERM", () => stop.abort());
      await new Promise((r) => stop.signal.addEventListener("abort", r));
      clearTimeout(timer);
    });
}

/** One line for people: time, type, and what the event is about. */
function describe(e: { type: string; at: number; [k: string]: unknown }): string {
  const time = new Date(e.at).toISOString().slice(11, 23);
  const str = (k: string) => typeof e[k] === "string" ? e[k] as string : "";
  let what: string;
  if (e.type.startsWith("task:")) {
    const detail = e.type === "task:exited"
      ? `${e.signal ? `signal ${e.signal}` : `code ${e.code}`}${e.willRestart ? ", restarting" : ""}`
      : e.type === "task:failed"
      ? str("reason")
      : `pid ${e.pid}`;
    what = `${str("path")} on ${shortId(str("agent"))} (${detail})`;
  } else if (e.type.startsWith("tasks:")) {
    const n = Array.isArray(e.paths) ? e.paths.length : Array.isArray(e.placed) ? e.placed.length : 0;
    what = `${str("topologyId")}: ${n} task(s) of ${shortId(str("agent") || str("by"))}`;
  } else {
    what = `${shortId(str("id") || str("by"))} ${str("host")}`;
  }
  return `${time}  ${e.type.padEnd(16)} ${what}`;
}

/**
 * `shoal monitor`: join the mesh as a light peer and print every event — on a terminal, a board of agents
 * and topologies that redraws as events arrive; otherwise one (coloured) line per event, or JSON.
 *
 * @module
 */
import type { Command } from "commander";
import { EVENTS_TOPIC, followEveryAgent, startMembership, TASK_EVENTS_TOPIC } from "../../mesh/mod.ts";
import { EventMessageSchema, type ShoalEvent } from "../../agent/mod.ts";
import { expandTaskStates } from "../../env/mod.ts";
import { ExitCode } from "../errors.ts";
import { shortId } from "../format.ts";
import { connectLightPeer } from "../light_peer.ts";
import { intOption, secondsOption } from "../options.ts";
import { openSession } from "../session.ts";
import { startFeed } from "../../ui/mod.ts";
import { Board } from "../monitor_board.ts";
import { paint, stateStyle } from "../colour.ts";
import type { LightPeer } from "../light_peer.ts";

interface MonitorOptions {
  json?: boolean;
  timeout?: number;
  count?: number;
  board?: boolean;
}

/** Registers `shoal monitor`. */
export function registerMonitor(program: Command): void {
  program.command("monitor")
    .option("--json", "print one JSON object per line")
    .option("--timeout <seconds>", "stop after this long", secondsOption)
    .option("--count <n>", "stop after this many events", intOption(1))
    .option("--no-board", "on a terminal too, print event lines instead of the redrawing board")
    .addHelpText(
      "after",
      `
On a terminal it shows the agents and active topologies (task states, restarts) and the latest events,
redrawn as events arrive; piped, it prints one line per event, coloured unless NO_COLOR is set.

Examples:
  $ shoal monitor
  $ shoal monitor --no-board | grep task:exited
  $ shoal monitor --json | jq -c 'select(.type == "agent:dead")'`,
    )
    .action(async (opts: MonitorOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const session = await openSession(name);
      await using peer = await connectLightPeer(session);
      if (!opts.json && opts.board !== false && process.stdout.isTTY) {
        return await runBoard(peer, name, session.record.id, opts);
      }
      const stop = new AbortController();
      let printed = 0;
      const print = (event: { type: string; at: number; [k: string]: unknown }) => {
        if (stop.signal.aborted) return;
        if (opts.json) {
          process.stdout.write(JSON.stringify(event) + "\n");
        } else {
          process.stdout.write(paint(eventStyle(event), describe(event)) + "\n");
        }
        if (opts.count && ++printed >= opts.count) stop.abort();
      };
      // Until every agent is followed, events wait: a test (or a person) who saw every agent joined may act.
      const held: Parameters<typeof print>[0][] = [];
      let live = false;
      const out = (e: Parameters<typeof print>[0]) => live ? print(e) : held.push(e);
      const onEvents = (events: ShoalEvent[]) => {
        // Agents coalesce task events into batches (the schema unpacks them), and an environment's task
        // states into one event per state: tools see one line per event and task.
        for (const e of events) for (const x of expandTaskStates(e)) out(x);
      };
      peer.node.subscribe(EVENTS_TOPIC, EventMessageSchema, onEvents);
      peer.node.subscribe(TASK_EVENTS_TOPIC, EventMessageSchema, onEvents);
      await using membership = await startMembership({ node: peer.node });
      membership.events.on(out);
      // Task starts and restarts reach only the tools connected to their agent.
      using follower = followEveryAgent(peer.node, membership, { topic: EVENTS_TOPIC });
      await follower.ready;
      live = true;
      held.splice(0).forEach(print);
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

/** The colour of an event line: deaths and crashes red, suspicion yellow, joins and starts green. */
function eventStyle(e: { type: string; [k: string]: unknown }): Parameters<typeof paint>[0] {
  if (e.type === "task:exited") {
    return e.stopped ? "gray" : e.code === 0 && !e.signal ? "blue" : e.willRestart ? "yellow" : "red";
  }
  if (e.type === "task:failed" || e.type === "tasks:lost" || e.type === "tasks:abandoned") return "red";
  if (e.type === "task:started") return "green";
  if (e.type.startsWith("agent:")) {
    return stateStyle(e.type.slice(6) === "joined" ? "alive" : e.type.slice(6));
  }
  return "reset";
}

/** The board: agents and topologies, redrawn on events (at most 10 times a second) and each second. */
async function runBoard(
  peer: LightPeer,
  session: string,
  sessionId: string,
  opts: MonitorOptions,
): Promise<void> {
  await using feed = await startFeed({ node: peer.node, via: peer.agent, sessionId });
  const board = new Board({
    recentLines: Math.max(5, (process.stdout.rows ?? 40) - 20 - feed.agents.length),
  });
  board.agents = feed.agents;
  const loadTasks = async (id: string) => board.setTasks(id, await feed.tasks(id));
  for (const t of await feed.topologies()) board.topologies.set(t.id, t);
  await Promise.all(
    [...board.topologies.values()].filter((t) => t.state === "active").map((t) => loadTasks(t.id)),
  );
  const stop = new AbortController();
  let queued: ReturnType<typeof setTimeout> | undefined;
  const draw = () => {
    queued = undefined;
    process.stdout.write(`\x1b[H\x1b[2J${board.render(session)}`);
  };
  const soon = () => (queued ??= setTimeout(draw, 100));
  let seen = 0;
  const off = feed.messages.on((m) => {
    if (m.kind === "agents") board.agents = m.agents;
    else if (m.kind === "topology") {
      const had = board.topologies.get(m.topology.id);
      board.topologies.set(m.topology.id, m.topology);
      if (!had || had.version !== m.topology.version || had.epoch !== m.topology.epoch) {
        void loadTasks(m.topology.id).then(soon, () => {});
      }
    } else if (m.kind === "event") {
      const e = m.event;
      board.apply(e, paint(eventStyle(e), describe(e)));
      if (e.type === "tasks:replaced") void loadTasks(e.topologyId).then(soon, () => {});
      if (opts.count && ++seen >= opts.count) stop.abort();
    }
    soon();
  });
  process.stdout.write("\x1b[?1049h\x1b[?25l");
  const clock = setInterval(draw, 1_000);
  const timer = opts.timeout !== undefined ? setTimeout(() => stop.abort(), opts.timeout) : undefined;
  process.once("SIGINT", () => {
    process.exitCode = ExitCode.interrupted;
    stop.abort();
  });
  process.once("SIGTERM", () => stop.abort());
  draw();
  await new Promise((r) => stop.signal.addEventListener("abort", r));
  off();
  clearInterval(clock);
  clearTimeout(timer);
  clearTimeout(queued);
  // Back to the normal screen, with the last board left on it.
  process.stdout.write(`\x1b[?25h\x1b[?1049l${board.render(session)}`);
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
    what = `${shortId(str("id") || str("by"))} ${str("host")}${str("reason") ? `: ${str("reason")}` : ""}`;
  }
  return `${time}  ${e.type.padEnd(16)} ${what}`;
}

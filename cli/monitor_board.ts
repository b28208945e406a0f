/**
 * `shoal monitor` on a terminal: a board of the agents and topologies that redraws as events arrive — the
 * terminal's version of the dashboard, fed by the same {@linkcode Feed}.
 *
 * @module
 */
import type { ShoalEvent } from "../agent/mod.ts";
import type { MembershipEvent } from "../mesh/mod.ts";
import type { AgentView, TaskView, TopologyView } from "../ui/mod.ts";
import { paint, stateStyle } from "./colour.ts";
import { duration, shortId, table } from "./format.ts";

const STATES = ["running", "starting", "restarting", "crashed", "failed", "lost", "done", "stopped"];

/** A task's state as people read it: an exit other than 0 is a crash. */
export function shownState(t: { state: string; exitCode?: number | null; signal?: string | null }): string {
  if (t.state === "exited") return t.exitCode === 0 && !t.signal ? "done" : "crashed";
  return t.state;
}

/** What the board shows, kept up to date from events. */
export class Board {
  agents: AgentView[] = [];
  readonly topologies = new Map<string, TopologyView>();
  /** topology → path → task. */
  readonly tasks = new Map<
    string,
    Map<string, Pick<TaskView, "state" | "exitCode" | "signal" | "restarts">>
  >();
  readonly recent: string[] = [];
  readonly #keep: number;

  constructor(options: { recentLines?: number } = {}) {
    this.#keep = options.recentLines ?? 8;
  }

  /** Replaces a topology's tasks (a fresh listing). */
  setTasks(topologyId: string, tasks: TaskView[]): void {
    this.tasks.set(topologyId, new Map(tasks.map((t) => [t.path, t])));
  }

  /** Applies one mesh event; `line` is how the event list shows it. */
  apply(e: ShoalEvent | MembershipEvent, line: string): void {
    this.recent.unshift(line);
    this.recent.length = Math.min(this.recent.length, this.#keep);
    if (!("topologyId" in e)) return;
    let map = this.tasks.get(e.topologyId);
    if (!map) this.tasks.set(e.topologyId, map = new Map());
    if (e.type === "tasks:lost") {
      for (const p of e.paths) {
        const t = map.get(p);
        if (t) t.state = "lost";
      }
      return;
    }
    if (!("path" in e)) return;
    const t = map.get(e.path) ?? { state: "starting", restarts: 0 };
    switch (e.type) {
      case "task:started":
        Object.assign(t, { state: "running", restarts: e.restarts });
        delete t.exitCode;
        delete t.signal;
        break;
      case "task:exited":
        Object.assign(t, {
          exitCode: e.code,
          signal: e.signal,
          state: e.willRestart ? "restarting" : e.stopped ? "stopped" : "exited",
        });
        break;
      case "task:failed":
        t.state = "failed";
    }
    map.set(e.path, t);
  }

  /** The whole board as text, `width` columns wide. */
  render(session: string, now = Date.now()): string {
    const alive = this.agents.filter((a) => a.state === "alive");
    const free = alive.reduce((n, a) => n + a.slots.free, 0);
    const total = alive.reduce((n, a) => n + a.slots.total, 0);
    const out = [
      `${
        paint("bold", `shoal monitor — session "${session}"`)
      }  ${alive.length} agent(s) alive, ${free}/${total} slots free  ${
        new Date(now).toISOString().slice(11, 19)
      } UTC`,
      "",
      table(
        ["HOST", "AGENT", "STATE", "USED/SLOTS", "LOAD", "UPTIME"],
        this.agents.map((a) => [
          a.host,
          shortId(a.id),
          paint(stateStyle(a.state), a.state),
          `${a.slots.total - a.slots.free}/${a.slots.total}`,
          a.load.toFixed(2),
          a.state === "alive" || a.state === "suspect"
            ? duration(now - a.startedAt)
            : `-${duration(now - a.lastSeen)}`,
        ]),
      ),
      "",
    ];
    const active = [...this.topologies.values()].filter((t) => t.state === "active");
    if (active.length === 0) out.push("No active topology.");
    else {
      out.push(table(
        ["TOPOLOGY", "NAME", "TASKS", "STATES", "RESTARTS"],
        active.map((t) => {
          const counts = new Map<string, number>();
          let restarts = 0;
          for (const task of this.tasks.get(t.id)?.values() ?? []) {
            const s = shownState(task);
            counts.set(s, (counts.get(s) ?? 0) + 1);
            restarts += task.restarts;
          }
          const states = STATES.filter((s) => counts.get(s)).map((s) =>
            paint(stateStyle(s), `${counts.get(s)} ${s}`)
          );
          return [t.id, t.name, t.tasks, states.join(", ") || "-", restarts];
        }),
      ));
    }
    out.push("", paint("bold", "Recent events"), ...this.recent);
    return out.join("\n") + "\n";
  }
}

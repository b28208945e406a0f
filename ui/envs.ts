/**
 * The dashboard's environments: the replicated records as the freshest peer holds them, kept live by the
 * records' own gossip and by the `env:*` events (an event about a record the dashboard has not seen yet
 * fetches it once, coalesced), and control through env/'s controller — the same call `shoal env control`
 * makes. What the page may press comes from env/'s state machine.
 *
 * @module
 */
import type { CommanderInit } from "../commander/mod.ts";
import {
  aggregateTaskStates,
  allowedEvents,
  applyClaim,
  controlEnvironment,
  type ControlResult,
  ENV_TOPIC,
  type EnvEvent,
  type EnvRecord,
  EnvRecordSchema,
  type EnvState,
  type EnvTask,
  type EnvTransition,
  fetchEnvs,
  findArbiter,
  newerEnv,
  type TaskEnvState,
} from "../env/mod.ts";
import type { MeshNode } from "../mesh/mod.ts";
import type { ShoalEvent } from "../agent/mod.ts";

/** How many past transitions a page gets. */
const HISTORY_SHOWN = 20;
/** Events arriving together cause one fetch. */
const REFRESH_DELAY_MS = 250;

/** An environment as the page shows it: the record without its control rules, plus the events allowed. */
export interface EnvView {
  id: string;
  topologyId: string;
  file: string;
  state: EnvState;
  runNumber: number | null;
  epoch: number;
  seq: number;
  /** env/'s aggregate of the task states. */
  taskState: TaskEnvState | "MIXED";
  /** The events env/'s state machine allows from `state`, in its order. */
  allowed: EnvEvent[];
  reason?: string;
  /** The transition in progress, if any. */
  controller: EnvRecord["controller"];
  lastTransition: EnvTransition | null;
  /** The last transitions, oldest first. */
  history: EnvTransition[];
  tasks: ({ path: string } & EnvTask)[];
  destroyed: boolean;
  createdAt: number;
  updatedAt: number;
}

/** The outcome of a control, as the page shows it. */
export type EnvControlView = Omit<ControlResult, "record"> & { env: EnvView };

/** What {@linkcode EnvFeed} needs from the dashboard's feed. */
export interface EnvFeedInit {
  node: MeshNode;
  /** Runs a request through an agent that answers. */
  ask<T>(fn: (init: CommanderInit) => Promise<T>, options: { signal?: AbortSignal }): Promise<T>;
  /** The agent to control through (controls are not retried elsewhere: a claim may have gone through). */
  via(): string;
  sessionId: string;
  /** Pushes a changed environment to the pages. */
  emit(env: EnvView): void;
  /** How long events are gathered before one fetch (default 250 ms). */
  refreshDelayMs?: number;
}

/** The page's view of an environment record. */
export function envView(r: EnvRecord): EnvView {
  return {
    id: r.id,
    topologyId: r.topologyId,
    file: r.file,
    state: r.state,
    runNumber: r.runNumber,
    epoch: r.epoch,
    seq: r.seq,
    taskState: aggregateTaskStates(Object.values(r.tasks).map((t) => t.state)),
    allowed: allowedEvents(r.state),
    ...(r.reason ? { reason: r.reason } : {}),
    controller: r.controller,
    lastTransition: r.history.at(-1) ?? null,
    history: r.history.slice(-HISTORY_SHOWN),
    tasks: Object.entries(r.tasks).map(([path, t]) => ({ path, ...t })).sort((a, b) =>
      a.path < b.path ? -1 : a.path > b.path ? 1 : 0
    ),
    destroyed: r.destroyed,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/** Environments for the dashboard. */
export class EnvFeed {
  readonly #init: EnvFeedInit;
  readonly #records = new Map<string, EnvRecord>();
  #off: (() => void) | undefined;
  #refresh: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(init: EnvFeedInit) {
    this.#init = init;
  }

  /** Follows the records' gossip. */
  start(): void {
    this.#off = this.#init.node.subscribe(ENV_TOPIC, EnvRecordSchema, (r) => this.#merge(r as EnvRecord));
  }

  /**
   * An event from the monitor topic: an `env:*` or environment `task:state` event that says more than the
   * record held here (a gossip message missed, or not yet arrived) fetches the records once. True when a
   * fetch is due.
   */
  onEvent(e: ShoalEvent): boolean {
    if (this.#stopped) return false;
    switch (e.type) {
      case "env:claimed": {
        // A take travels as this event, not as a record: applied to the copy held here when it can be.
        const have = this.#records.get(e.envId);
        const next = have && applyClaim(have, e);
        if (next) {
          this.#merge(next);
          return false;
        }
        if (have && have.epoch >= e.epoch) return false;
        break;
      }
      case "env:state": {
        const have = this.#records.get(e.envId);
        if (have && have.state === e.state && have.runNumber === e.runNumber) return false;
        break;
      }
      case "task:state": {
        const have = this.#records.get(e.envId);
        if (have && e.path !== undefined && have.tasks[e.path]?.state === e.state) return false;
        break;
      }
      case "env:transition": {
        const have = this.#records.get(e.envId);
        const seen = have?.history.some((h) =>
          h.startedAt === e.startedAt && h.event === e.event && h.to === e.to
        );
        if (seen) return false;
        break;
      }
      default:
        return false;
    }
    this.#refresh ??= setTimeout(() => {
      this.#refresh = undefined;
      // The next environment event refreshes again; the page keeps the list it has.
      void this.list().catch(() => {});
    }, this.#init.refreshDelayMs ?? REFRESH_DELAY_MS);
    return true;
  }

  /** Every live environment, as the arbiter (the freshest replica) holds them, oldest first. */
  async list(options: { signal?: AbortSignal } = {}): Promise<EnvView[]> {
    const records = await this.#init.ask(
      async (init) => await fetchEnvs(init, await findArbiter(init)),
      options,
    );
    for (const r of records) this.#merge(r);
    return [...this.#records.values()].filter((r) => !r.destroyed).sort((a, b) => a.createdAt - b.createdAt)
      .map(envView);
  }

  /** Sends `event` to environment `id` as `shoal env control` does, as `by`; throws env/'s errors. */
  async control(
    req: { id: string; event: string; args: Record<string, string>; by: string },
  ): Promise<EnvControlView> {
    const init = {
      node: this.#init.node,
      via: this.#init.via(),
      sessionId: this.#init.sessionId,
      by: req.by,
    };
    try {
      const { record, ...rest } = await controlEnvironment(init, req.id, req.event, req.args);
      this.#merge(record);
      return { ...rest, env: envView(record) };
    } catch (err) {
      const result = (err as { result?: ControlResult }).result;
      if (result) this.#merge(result.record);
      throw err;
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#refresh);
    this.#off?.();
  }

  #merge(r: EnvRecord): void {
    const have = this.#records.get(r.id);
    if (have && !newerEnv(r, have)) return;
    this.#records.set(r.id, r);
    this.#init.emit(envView(r));
  }
}

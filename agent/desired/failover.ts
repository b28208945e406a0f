/**
 * When agents die, the tasks they ran are reported lost and placed elsewhere if slots allow — once, and
 * only by a side of the mesh that may: a partition looks like deaths from both sides.
 *
 * - **Who:** the alive agent with the lowest peer ID in its view (every agent of a side agrees without
 *   talking) acts as commander; the other agents of the side only keep their own standing.
 * - **Only a majority:** the side must see a strict majority of the record's membership (`quorum.ts`);
 *   agents proven dead (on this host, their loopback port refuses connections: `_refused.ts`) leave the count. A minority side
 *   keeps running its own tasks, re-places nothing, logs "this side sees 3 of 7 agents; not re-placing"
 *   and reports it to `shoal info`; with `stopOnMinorityAfterMs` it stops its own tasks after that long.
 * - **Once:** the actor claims the next epoch from that majority (`claims.ts`) before leasing anything;
 *   recoveries of one topology run one at a time, and every agent of the record found dead by then is
 *   recovered in the same record, so two deaths in one sweep make one recovery, not two from the same
 *   record.
 * - **Not while it answers:** before claiming, the actor pings the lost agents; one that answers (a view
 *   that lags a heal) is not re-placed, and the topology is judged again until the view agrees.
 * - **When:** an agent counts as lost `lostAfterMs` after membership declared it dead (default 0: at once;
 *   membership's suspicion already waited several seconds).
 *
 * Nothing here is periodic: work happens on membership events and record changes.
 *
 * @module
 */
import { hostname } from "node:os";
import { type Membership, type MeshNode, REAL_CLOCK, request, type SwimClock } from "../../mesh/mod.ts";
import { refusesConnections } from "./_refused.ts";
import type { ClaimTable } from "./claims.ts";
import { type RecoverResult, recoverTopology } from "../../commander/mod.ts";
import type { DesiredState } from "./desired_state.ts";
import type { EventBatcher } from "../event_batcher.ts";
import type { Logger } from "../log.ts";
import { CLAIM_PROTOCOL, ClaimResponseSchema, type TopologyRecord } from "../wire/mod.ts";
import { type Quorum, quorumMembers, quorumOf } from "./quorum.ts";

/** How long a lost agent has to answer a ping before its tasks are re-placed, ms. */
const PING_MS = 2_000;

/** Failover settings (agent options `--lost-after`, `--stop-on-minority-after`). */
export interface FailoverOptions {
  /** How long after its death an agent's tasks count as lost (default 0 ms). */
  lostAfterMs?: number;
  /** A side in a minority this long stops its own tasks of the topology (default: never). */
  stopOnMinorityAfterMs?: number;
}

/** What failover needs. */
export interface FailoverInit extends FailoverOptions {
  node: MeshNode;
  membership: Membership;
  desired: DesiredState;
  claims: ClaimTable;
  events: EventBatcher;
  log: Logger;
  sessionId: string;
  /** This agent's host name as announced (loopback addresses prove deaths only on the same host). */
  host?: string;
  /** Stops this agent's tasks of a topology (self-fencing of a minority). */
  stopLocal?: (topologyId: string) => Promise<unknown>;
  /** Whether this agent runs tasks of a topology. */
  holdsTasks?: (topologyId: string) => boolean;
  /**
   * Paths the record places on this agent that this process never ran: placed on a previous process of
   * the same identity (restarted with its data dir before the mesh declared it dead), so lost.
   */
  missingHere?: (record: TopologyRecord) => string[];
  /** The time and the timers of `lostAfterMs`, retries and fencing (default the real ones; tests pass a fake). */
  clock?: SwimClock;
}

/** A topology this agent's side cannot re-place, as `shoal info` shows it. */
export interface MinorityStanding extends Quorum {
  topologyId: string;
  /** Since when (ms since epoch). */
  since: number;
  /** Agents of the record lost from this side's sight. */
  lost: string[];
}

/** Watches for dead agents and re-places their tasks where a majority allows. */
export class Failover implements Disposable {
  readonly #init: FailoverInit;
  readonly #diedAt = new Map<string, number>();
  readonly #busy = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  readonly #minority = new Map<string, MinorityStanding & { fence?: unknown }>();
  readonly #timers = new Set<unknown>();
  readonly #offs: (() => void)[] = [];
  /** Since when claims for a topology were refused or unanswered (retried until the record moves on). */
  readonly #disputes = new Map<string, number>();
  #closed = false;
  readonly #abort = new AbortController();

  readonly #clock: SwimClock;

  constructor(init: FailoverInit) {
    this.#init = init;
    this.#clock = init.clock ?? REAL_CLOCK;
  }

  /** Subscribes to membership events and record changes. */
  start(): this {
    const { membership, desired } = this.#init;
    this.#offs.push(membership.events.on((e) => {
      if (e.type === "agent:dead" || e.type === "agent:left") {
        this.#diedAt.set(e.id, this.#clock.now());
        for (const r of desired.records()) if (this.#names(r, e.id)) this.#schedule(r.id);
      } else if (e.type === "agent:alive" || e.type === "agent:joined") {
        this.#diedAt.delete(e.id);
        // A side that grows may have become a majority, or whole again.
        for (const id of this.#minority.keys()) this.#schedule(id);
      }
    }));
    this.#offs.push(desired.changes.on((r) => {
      if (r.state !== "active") return this.#clearMinority(r.id);
      if (Object.keys(r.placement).some((a) => this.#diedAt.has(a))) this.#schedule(r.id);
      else if (this.#missing(r).length > 0) this.#schedule(r.id);
    }));
    return this;
  }

  /** Topologies this agent's side may not re-place now. */
  minority(): MinorityStanding[] {
    return [...this.#minority.values()].map(({ fence: _, ...m }) => m);
  }

  #missing(r: TopologyRecord): string[] {
    if (r.state !== "active" || !r.placement[this.#init.node.peerId]) return [];
    return this.#init.missingHere?.(r) ?? [];
  }

  #names(r: TopologyRecord, agent: string): boolean {
    return r.state === "active" && (Object.hasOwn(r.placement, agent) || quorumMembers(r).includes(agent));
  }

  #schedule(id: string, delayMs = 0): void {
    if (this.#closed) return;
    if (delayMs > 0) {
      const t = this.#clock.setTimeout(() => {
        this.#timers.delete(t);
        this.#schedule(id);
      }, delayMs);
      this.#timers.add(t);
      return;
    }
    if (this.#busy.has(id)) {
      this.#again.add(id);
      return;
    }
    const run = (async () => {
      do {
        this.#again.delete(id);
        try {
          await this.#evaluate(id);
        } catch (err) {
          this.#init.log.error("re-placing tasks failed", { topology: id, reason: (err as Error).message });
        }
      } while (this.#again.has(id) && !this.#closed);
    })().finally(() => this.#busy.delete(id));
    this.#busy.set(id, run);
  }

  #clearMinority(id: string): void {
    const m = this.#minority.get(id);
    if (!m) return;
    if (m.fence !== undefined) this.#clock.clearTimeout(m.fence);
    this.#minority.delete(id);
    this.#init.log.info("this side sees a majority again", { topology: id });
  }

  async #evaluate(id: string): Promise<void> {
    const { node, membership, desired } = this.#init;
    const record = desired.get(id);
    if (!record || record.state !== "active") return this.#clearMinority(id);
    const view = new Map(membership.members().map((m) => [m.id, m]));
    const gone = (a: string) => {
      const s = view.get(a)?.state;
      return s === "dead" || s === "left";
    };
    const holders = Object.keys(record.placement);
    const now = this.#clock.now();
    const lostAfter = this.#init.lostAfterMs ?? 0;
    const dead = holders.filter(gone);
    let lost = dead.filter((a) => now - (this.#diedAt.get(a) ?? 0) >= lostAfter);
    const waiting = dead.filter((a) => !lost.includes(a));
    if (waiting.length > 0) {
      const next = Math.min(...waiting.map((a) => (this.#diedAt.get(a) ?? now) + lostAfter - now));
      this.#schedule(id, Math.max(1, next));
    }
    const alive = new Set([...view.values()].filter((m) => m.state === "alive").map((m) => m.id));
    alive.add(node.peerId);
    // Deaths beyond doubt leave the count: only agents of the record we do not see.
    const unseen = quorumMembers(record).filter((a) => !alive.has(a) && view.has(a));
    const proven = new Set<string>();
    await Promise.all(unseen.map(async (a) => {
      const m = view.get(a)!;
      const local = m.host === (this.#init.host ?? hostname());
      if (await refusesConnections(m.addrs, { local })) proven.add(a);
    }));
    const q = quorumOf(record, alive, proven);
    if (!q.majority) {
      this.#enterMinority(record, q, unseen);
      return;
    }
    this.#clearMinority(id);
    const missing = lost.length === 0 ? this.#missing(record) : [];
    if (missing.length > 0) return await this.#recoverMissing(record, missing, alive, proven, q);
    if (lost.length === 0) return void this.#disputes.delete(id);
    const actor = [...alive].sort()[0];
    if (actor !== node.peerId) return;
    // A view can hold dead an agent that is not: after a heal, before its refutation reached us, while an
    // agent that heard from it already moved a task back to it (`--reconcile keep_original`). Only agents
    // that do not answer a ping are lost; the others are judged again until the view agrees.
    const answering = await this.#answering(lost.filter((a) => !proven.has(a)));
    if (answering.length > 0) {
      this.#init.log.info("agents this view holds dead answer a ping; not re-placing their tasks yet", {
        topology: id,
        agents: answering.join(","),
      });
      lost = lost.filter((a) => !answering.includes(a));
      this.#retryLater(id);
      if (lost.length === 0) return;
    }
    const epoch = await this.#claim(record, alive, proven, q, lost);
    if (epoch === "disputed" || epoch === undefined) {
      // Voters still see some of them alive (their views lag ours, or ours is stale after a heal), did not
      // answer in time (a loaded machine), or another claimant holds the epoch. Ask again while they stay
      // lost here: a recovery by someone else moves the record on, and then nothing is lost.
      return this.#retryLater(id);
    }
    this.#disputes.delete(id);
    const current = desired.get(id);
    if (!current || current.epoch !== record.epoch || current.version !== record.version) {
      this.#again.add(id); // the record moved on while we claimed: judge the new one
      return;
    }
    await this.#recover(record, lost, epoch, [...alive], { ...q, proven: [...proven] });
  }

  /**
   * This agent was restarted with its identity before the mesh saw it dead: the record still places on it
   * tasks that died with its previous process. It alone knows, so it acts: it claims the next epoch like
   * any recovery (the claim fences a concurrent one) and re-places them — on its own free slots too.
   */
  async #recoverMissing(
    record: TopologyRecord,
    missing: string[],
    alive: Set<string>,
    proven: Set<string>,
    q: Quorum,
  ): Promise<void> {
    const { node, desired, log, events } = this.#init;
    const epoch = await this.#claim(record, alive, proven, q, []);
    if (epoch === "disputed" || epoch === undefined) {
      // Voters that did not answer (a peer still dialling the new process), or a claim held by another:
      // judge again shortly; a recovery by someone else makes the record move on, and then nothing is missing.
      return this.#retryLater(record.id);
    }
    this.#disputes.delete(record.id);
    const current = desired.get(record.id);
    if (!current || current.epoch !== record.epoch || current.version !== record.version) {
      this.#again.add(record.id);
      return;
    }
    log.warn("this agent restarted; re-placing the tasks its previous process ran", {
      topology: record.id,
      tasks: missing.length,
      epoch,
    });
    events.add({
      type: "tasks:lost",
      at: this.#clock.now(),
      topologyId: record.id,
      agent: node.peerId,
      paths: missing,
    });
    const r = await recoverTopology(
      { node, via: node.peerId, sessionId: this.#init.sessionId },
      record,
      [],
      { epoch, members: [...alive], missing: { agent: node.peerId, paths: missing } },
    );
    this.#replaced(r, [node.peerId]);
  }

  /** Those of `agents` that answer a ping within {@linkcode PING_MS}. */
  async #answering(agents: string[]): Promise<string[]> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(PING_MS)]);
    const answered = await Promise.all(
      agents.map((a) => this.#init.node.ping(a, { signal }).then(() => true, () => false)),
    );
    return agents.filter((_, i) => answered[i]);
  }

  /** Judges a topology again after a refused claim: every 2 s for 30 s, then every 10 s. */
  #retryLater(id: string): void {
    const since = this.#disputes.get(id) ?? this.#clock.now();
    this.#disputes.set(id, since);
    this.#schedule(id, this.#clock.now() - since < 30_000 ? 2_000 : 10_000);
  }

  #enterMinority(record: TopologyRecord, q: Quorum, lost: string[]): void {
    const had = this.#minority.get(record.id);
    const standing = { ...q, topologyId: record.id, since: had?.since ?? this.#clock.now(), lost };
    const changed = !had || had.sees !== q.sees || had.of !== q.of;
    this.#minority.set(record.id, { ...standing, ...(had?.fence ? { fence: had.fence } : {}) });
    if (changed) {
      this.#init.log.warn(`this side sees ${q.sees} of ${q.of} agents; not re-placing`, {
        topology: record.id,
        need: q.need,
        lost: lost.join(","),
      });
      this.#init.events.add({
        type: "topology:minority",
        at: this.#clock.now(),
        topologyId: record.id,
        sees: q.sees,
        of: q.of,
        need: q.need,
      });
    }
    const after = this.#init.stopOnMinorityAfterMs;
    const entry = this.#minority.get(record.id)!;
    if (after === undefined || entry.fence || !this.#init.stopLocal) return;
    if (this.#init.holdsTasks && !this.#init.holdsTasks(record.id)) return;
    entry.fence = this.#clock.setTimeout(() => {
      if (this.#minority.get(record.id)?.since !== entry.since || this.#closed) return;
      this.#init.log.warn("this side has been in a minority too long; stopping this agent's tasks", {
        topology: record.id,
        after: `${after}ms`,
      });
      this.#init.events.add({
        type: "tasks:fenced",
        at: this.#clock.now(),
        topologyId: record.id,
        agent: this.#init.node.peerId,
      });
      this.#init.stopLocal!(record.id).catch((err) =>
        this.#init.log.error("fencing: stopping this minority's tasks failed", {
          topology: record.id,
          reason: (err as Error).message,
        })
      );
    }, Math.max(0, entry.since + after - this.#clock.now()));
  }

  /** Claims the next epoch from a majority; resolves to it, or undefined when another claimant holds it. */
  async #claim(
    record: TopologyRecord,
    alive: Set<string>,
    proven: Set<string>,
    q: Quorum,
    lost: string[],
  ): Promise<number | "disputed" | undefined> {
    const { node, claims, log } = this.#init;
    const me = node.peerId;
    const voters = quorumMembers(record).filter((a) => alive.has(a) && !proven.has(a));
    const held = claims.held(record.id);
    // A claim we already hold (asked again after a dispute) is asked for again, not raised.
    let epoch = held && held.claimant === me && held.epoch > record.epoch
      ? held.epoch
      : Math.max(record.epoch, held?.epoch ?? 0) + 1;
    for (let attempt = 0; attempt < 3; attempt++) {
      const answers = await Promise.all(voters.map(async (a) => {
        if (a === me) {
          return claims.decide(record.id, epoch, me, this.#init.desired.get(record.id)?.epoch ?? 0);
        }
        try {
          return await request(
            node,
            a,
            CLAIM_PROTOCOL,
            { topologyId: record.id, epoch, claimant: me, lost },
            {
              schema: ClaimResponseSchema,
              timeoutMs: 3_000,
            },
          );
        } catch {
          return undefined;
        }
      }));
      const grants = answers.filter((r) => r?.granted).length;
      if (grants >= q.need) return epoch;
      const recorded = answers.some((r) => r && r.recordEpoch >= epoch);
      const disputed = [...new Set(answers.flatMap((r) => r?.alive ?? []))];
      const top = answers.reduce((m, r) => Math.max(m, r?.epoch ?? 0), 0);
      const holder = answers.find((r) => r && !r.granted && r.epoch === top)?.claimant;
      log.warn("claim of the next epoch refused; not re-placing", {
        topology: record.id,
        epoch,
        grants,
        need: q.need,
        ...(holder ? { heldBy: holder } : {}),
        ...(recorded ? { why: "a newer record exists" } : {}),
        ...(disputed.length ? { why: "voters still see them alive", alive: disputed.join(",") } : {}),
      });
      if (!recorded && disputed.length) return "disputed";
      // A newer record is on its way; a live claimant is doing the work; only a dead one is overtaken.
      if (recorded || !holder || holder === me || alive.has(holder)) return undefined;
      epoch = top + 1;
    }
    return undefined;
  }

  async #recover(
    record: TopologyRecord,
    lost: string[],
    epoch: number,
    members: string[],
    why: Quorum & { proven: string[] },
  ): Promise<void> {
    const { node, events, log } = this.#init;
    for (const agent of lost) {
      const paths = record.placement[agent] ?? [];
      log.warn("agent died; re-placing its tasks", {
        agent,
        topology: record.id,
        tasks: paths.length,
        epoch,
        sees: `${why.sees}/${why.of}`,
        ...(why.proven.length ? { provenDead: why.proven.join(",") } : {}),
      });
      events.add({ type: "tasks:lost", at: this.#clock.now(), topologyId: record.id, agent, paths });
    }
    const r = await recoverTopology(
      { node, via: node.peerId, sessionId: this.#init.sessionId },
      record,
      lost,
      { epoch, members },
    );
    this.#replaced(r, lost);
  }

  /** Logs and reports a recovery's outcome. */
  #replaced(r: RecoverResult, agents: string[]): void {
    this.#init.log.info("tasks re-placed", {
      topology: r.topologyId,
      placed: r.placed.length,
      lost: r.lost.length,
      epoch: r.epoch,
      ...(r.reasons.length ? { reasons: r.reasons.join("; ") } : {}),
    });
    this.#init.events.add({
      type: "tasks:replaced",
      at: this.#clock.now(),
      topologyId: r.topologyId,
      epoch: r.epoch,
      agents,
      placed: r.placed.map((t) => ({ path: t.path, agent: t.agent, state: t.state })),
      lost: r.lost,
      reasons: r.reasons,
    });
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    this.#abort.abort();
    for (const off of this.#offs) off();
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    for (const m of this.#minority.values()) if (m.fence !== undefined) this.#clock.clearTimeout(m.fence);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Starts a {@linkcode Failover}. */
export function startFailover(init: FailoverInit): Failover {
  return new Failover(init).start();
}

/**
 * The agent side of environments: every agent replicates the records and serves {@linkcode ENV_PROTOCOL};
 * the arbiter — the alive agent with the lowest peer ID, so all agree without talking, as for failover —
 * decides claims (one epoch, one winner), hands out run numbers (one more than any it has seen or
 * recorded, so never reused), calls a controller lost once its deadline passed, and turns crashes of
 * critical tasks into ERROR. It alone publishes `env:state`, `env:transition` and `task:state` events.
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lpStream } from "@libp2p/utils";
import {
  decode,
  encode,
  EVENTS_TOPIC,
  handleRequests,
  type Membership,
  type MeshNode,
  request,
} from "../mesh/mod.ts";
import type { Logger } from "../agent/log.ts";
import {
  type BatchedEvent,
  type EventMessage,
  EventMessageSchema,
  type EventOf,
  type RunnerEvent,
  type ShoalEvent,
} from "../agent/wire/mod.ts";
import type { CustomCommands } from "../agent/commands/mod.ts";
import {
  ENV_PROTOCOL,
  ENV_TRANSITION_PROTOCOL,
  type EnvRequest,
  EnvRequestSchema,
  type EnvResponse,
  EnvResponseSchema,
  type EnvTransitionFrame,
  EnvTransitionRequestSchema,
} from "./protocols.ts";
import { transitionDeadline } from "./deadline.ts";
import { nextState } from "./fsm.ts";
import { applyClaim, EnvRecords } from "./records.ts";
import { taskStateEvents } from "./task_events.ts";
import type { EnvRecord, EnvTransition } from "./types.ts";

/** What {@linkcode startEnvService} needs. */
export interface EnvServiceInit {
  node: MeshNode;
  membership: Membership;
  /** This agent's task events (its own exits never come back through gossip). */
  taskEvents: { on(fn: (e: RunnerEvent) => void): () => void };
  log: Logger;
  /** Sends a controller's transitions to the tasks, answers streamed back as they come. */
  commands?: Pick<CustomCommands, "send">;
  /** Where the highest run number handed out here is kept. */
  dataDir: string;
  /** The topology records this agent holds: a `take` of an environment with hooks answers with its own. */
  topology?: (id: string) => unknown;
  /** How often a passed controller deadline is looked at again until the arbiter acts (default 1 s). */
  checkIntervalMs?: number;
}

/** The running service. */
export interface EnvService {
  records: EnvRecords;
  /** A local task raised GO_ERROR: tell the arbiter. */
  taskError(topologyId: string, path: string, message: string): Promise<EnvResponse>;
  stop(): void;
}

/** The alive agent with the lowest peer ID. */
export function arbiterOf(members: { id: string; state: string }[]): string | undefined {
  return members.filter((m) => m.state === "alive").map((m) => m.id).sort()[0];
}

/** Highest run number `records` mention. */
export function highestRun(records: EnvRecord[]): number {
  let max = 0;
  for (const r of records) {
    max = Math.max(max, r.runNumber ?? 0);
    for (const h of r.history) max = Math.max(max, h.runNumber ?? 0);
  }
  return max;
}

/** Starts the environment service of an agent. */
export async function startEnvService(init: EnvServiceInit): Promise<EnvService> {
  const { node, membership, log } = init;
  const records = new EnvRecords(node);
  records.start(membership);
  const runFile = join(init.dataDir, "env-run-number");
  const isArbiter = () => arbiterOf(membership.members()) === node.peerId;
  /** The arbiter as a dialable target: its multiaddr when this agent knows one, else its peer ID. */
  const arbiterTarget = (): string => {
    const members = membership.members();
    const arbiter = arbiterOf(members) ?? node.peerId;
    const addr = members.find((m) => m.id === arbiter)?.addrs.find((a) => !a.includes("/0.0.0.0/"));
    return !addr ? arbiter : addr.includes("/p2p/") ? addr : `${addr}/p2p/${arbiter}`;
  };
  const toArbiter = async (req: EnvRequest, timeoutMs = 10_000): Promise<EnvResponse> =>
    await request(node, arbiterTarget(), ENV_PROTOCOL, req, {
      schema: EnvResponseSchema,
      maxBytes: 64 * 1024 * 1024,
      timeoutMs,
    }) as EnvResponse;

  const nextRun = (): number => {
    let stored = 0;
    try {
      stored = Number(readFileSync(runFile, "utf8")) || 0;
    } catch { /* none yet */ }
    const n = Math.max(stored, highestRun(records.records())) + 1;
    writeFileSync(runFile, String(n));
    return n;
  };

  const publishChanges = (before: EnvRecord | undefined, after: EnvRecord) => {
    const at = Date.now();
    const events: BatchedEvent[] = [];
    const last = after.history.at(-1);
    if (
      last &&
      (before?.history.length !== after.history.length || before.history.at(-1)?.startedAt !== last.startedAt)
    ) {
      events.push({ type: "env:transition", at, envId: after.id, ...last });
    }
    if (before?.state !== after.state || before?.reason !== after.reason) {
      events.push({
        type: "env:state",
        at,
        envId: after.id,
        state: after.state,
        runNumber: after.runNumber,
        ...(after.reason ? { reason: after.reason } : {}),
      });
    }
    // One event per group of tasks that reached a state together (see task_events.ts).
    events.push(...taskStateEvents(after.id, before?.tasks, after.tasks, at));
    if (events.length) {
      const batch: EventMessage = { type: "batch", at, by: node.peerId, events };
      // Events are for monitors; the records themselves reach peers by gossip or digest sync.
      void node.publish(EVENTS_TOPIC, batch).catch(() => {});
    }
  };

  const accept = (after: EnvRecord, options: { claimed?: boolean } = {}): Promise<EnvRecord> => {
    const before = records.get(after.id);
    if (!records.merge(after)) return Promise.resolve(after);
    // Merged here and now; its gossip and events (encoding 1,000 tasks' worth) go out after the answer,
    // which the controller waits for (versions order the replicas whatever arrives first).
    setTimeout(() => {
      if (options.claimed && before) {
        // A take changes the claim alone: peers apply it to the record they hold (`claimedOn`) rather
        // than decode every task again; one that held another version catches up by digest.
        const { epoch, seq, controller, runNumber, updatedAt } = after;
        const base = { seq: before.seq, updatedAt: before.updatedAt };
        const claim: EventMessage = {
          type: "env:claimed",
          at: Date.now(),
          by: node.peerId,
          envId: after.id,
          base,
          epoch,
          seq,
          controller,
          runNumber,
          updatedAt,
        };
        // A peer that misses the claim catches up by digest, as one holding another version does.
        void node.publish(EVENTS_TOPIC, claim).catch(() => {});
      } else void records.announce(after);
      publishChanges(before, after);
    }, 0);
    return Promise.resolve(after);
  };

  /** The arbiter sends `cur` to ERROR under a new epoch. */
  const force = (
    cur: EnvRecord,
    reason: string,
    change: Partial<EnvRecord> = {},
    by = `agent:${node.peerId}`,
  ) => {
    const now = Date.now();
    const entry: EnvTransition = {
      event: cur.controller?.event ?? "GO_ERROR",
      from: cur.state,
      to: "ERROR",
      // A lost controller's event failed; a GO_ERROR the mesh raised itself (a crash, a task) was applied.
      ok: !cur.controller,
      by,
      startedAt: cur.controller?.startedAt ?? now,
      ms: now - (cur.controller?.startedAt ?? now),
      reason,
    };
    return accept({
      ...cur,
      ...change,
      state: "ERROR",
      epoch: cur.epoch + 1,
      seq: 0,
      controller: null,
      reason,
      history: [...cur.history, entry].slice(-100),
      updatedAt: now,
    });
  };

  const handle = async (req: EnvRequest): Promise<EnvResponse> => {
    if (req.op === "list") return { ok: true, records: records.records() };
    if (req.op === "task-error") {
      const cur = records.byTopology(req.topologyId);
      if (!cur) return { ok: false, reason: `No environment runs topology "${req.topologyId}"` };
      if (cur.state === "ERROR" || cur.state === "DONE") {
        return { ok: false, reason: `Environment "${cur.id}" is ${cur.state} already`, record: cur };
      }
      const reason = `Task "${req.path}" raised GO_ERROR: ${req.message}`;
      const tasks = { ...cur.tasks };
      const t = tasks[req.path];
      if (t) tasks[req.path] = { ...t, state: "ERROR", reason: req.message };
      return { ok: true, record: await force(cur, reason, { tasks }, `task:${req.path}`) };
    }
    if (req.op === "take") {
      // A controller asks the agent it talks to, which sends it on to the arbiter: one round trip from the
      // controller instead of asking for the members first. The answer says where to send the patch.
      if (req.forwarded || isArbiter()) return await take(req);
      const target = arbiterTarget();
      return { ...await toArbiter({ ...req, forwarded: true }, 15_000), arbiter: target };
    }
    if (req.op === "patch") return await patch(req);
    const rec = req.record as EnvRecord;
    const cur = records.get(rec.id);
    if (req.op === "claim") {
      const epoch = cur?.epoch ?? 0;
      if (cur?.controller && cur.controller.deadline > Date.now()) {
        return {
          ok: false,
          reason: `Environment "${rec.id}" is busy: ${cur.controller.event} asked by ${cur.controller.by}`,
          record: cur,
        };
      }
      if (epoch !== req.expectEpoch) {
        return {
          ok: false,
          reason: `Environment "${rec.id}" changed meanwhile (now ${cur?.state}, epoch ${epoch}); look again`,
          ...(cur ? { record: cur } : {}),
        };
      }
      if (cur?.destroyed) return { ok: false, reason: `Environment "${rec.id}" was destroyed`, record: cur };
      const next: EnvRecord = {
        ...rec,
        epoch: epoch + 1,
        seq: 0,
        ...(req.allocateRun ? { runNumber: nextRun() } : {}),
        updatedAt: Date.now(),
      };
      return { ok: true, record: await accept(next) };
    }
    if (!cur || cur.epoch !== rec.epoch) {
      return {
        ok: false,
        reason: `Lost control of environment "${rec.id}": it moved on to epoch ${cur?.epoch ?? 0} (${
          cur?.state ?? "unknown"
        }${cur?.reason ? `: ${cur.reason}` : ""})`,
        ...(cur ? { record: cur } : {}),
      };
    }
    return { ok: true, record: await accept({ ...rec, seq: cur.seq + 1, updatedAt: Date.now() }) };
  };

  /** Why `cur` cannot be taken now (busy, destroyed), or undefined. */
  const busy = (cur: EnvRecord): EnvResponse | undefined => {
    if (cur.controller && cur.controller.deadline > Date.now()) {
      return {
        ok: false,
        reason: `Environment "${cur.id}" is busy: ${cur.controller.event} asked by ${cur.controller.by}`,
      };
    }
    if (cur.destroyed) return { ok: false, reason: `Environment "${cur.id}" was destroyed` };
    return undefined;
  };

  const take = async (req: Extract<EnvRequest, { op: "take" }>): Promise<EnvResponse> => {
    const cur = records.get(req.id);
    if (!cur || cur.destroyed) {
      const live = records.records().filter((r) => !r.destroyed).map((r) => r.id);
      return { ok: false, reason: `No environment "${req.id}"`, live };
    }
    const to = nextState(cur.state, req.event);
    if (!to || req.event === "DEPLOY") return { ok: false, reason: "refused", refused: { state: cur.state } };
    const no = busy(cur);
    if (no) return no;
    const startedAt = Date.now();
    const deadline = transitionDeadline(cur.control, req.event, cur.state, to, startedAt);
    const next: EnvRecord = {
      ...cur,
      epoch: cur.epoch + 1,
      seq: 0,
      controller: { by: req.by, peer: req.peer, event: req.event, startedAt, deadline },
      ...(req.event === "START_ACTIVITY" ? { runNumber: nextRun() } : {}),
      updatedAt: startedAt,
    };
    const hooks = cur.control.rules.some((r) => r.mode === "hook");
    const topology = hooks ? init.topology?.(cur.topologyId) : undefined;
    return { ok: true, record: await accept(next, { claimed: true }), ...(topology ? { topology } : {}) };
  };

  const patch = async (req: Extract<EnvRequest, { op: "patch" }>): Promise<EnvResponse> => {
    const cur = records.get(req.id);
    if (!cur || cur.epoch !== req.epoch) {
      return {
        ok: false,
        reason: `Lost control of environment "${req.id}": it moved on to epoch ${cur?.epoch ?? 0} (${
          cur?.state ?? "unknown"
        }${cur?.reason ? `: ${cur.reason}` : ""})`,
      };
    }
    const tasks = { ...cur.tasks };
    if (req.bulk) {
      const modes = new Set<string>(req.bulk.modes);
      for (const [p, t] of Object.entries(tasks)) {
        if (!modes.has(t.mode)) continue;
        const { reason: _, ...rest } = t;
        tasks[p] = { ...rest, state: req.bulk.state };
      }
    }
    Object.assign(tasks, req.tasks);
    const next: EnvRecord = {
      ...cur,
      state: req.state,
      tasks,
      controller: null,
      history: [...cur.history, req.entry as EnvTransition].slice(-100),
      seq: cur.seq + 1,
      updatedAt: Date.now(),
      ...(req.destroyed ? { destroyed: true } : {}),
    };
    if (req.reason !== null) next.reason = req.reason;
    else delete next.reason;
    await accept(next);
    return { ok: true, head: { epoch: next.epoch, seq: next.seq, updatedAt: next.updatedAt } };
  };

  await handleRequests(node, ENV_PROTOCOL, {
    schema: EnvRequestSchema,
    maxBytes: 64 * 1024 * 1024,
    handler: (req) => handle(req as EnvRequest),
  });

  if (init.commands) await serveTransitions(node, init.commands);

  // Lost controllers, acted on by the arbiter alone. A timer runs only while a controller is out: it wakes at
  // the earliest deadline, then every `checkIntervalMs` while a passed one is still there (the arbiter may
  // be another agent, or change). An agent with no transition under way has no timer at all.
  const checkEveryMs = init.checkIntervalMs ?? 1_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let armedAt = Infinity;
  const checkLost = () => {
    const now = Date.now();
    let arbiter: boolean | undefined;
    for (const r of records.records()) {
      if (!r.controller || r.controller.deadline > now || r.destroyed) continue;
      if (!(arbiter ??= isArbiter())) return;
      log.warn("environment controller lost", { env: r.id, event: r.controller.event, by: r.controller.by });
      void force(
        r,
        `Controller lost during ${r.controller.event} (${r.controller.by}): its deadline passed; tasks may ` +
          `have applied it in part — RECOVER, then go on`,
        // `force` merges here at once and gossips later: what it returns has nothing left to fail.
      ).catch(() => {});
    }
  };
  const arm = () => {
    const now = Date.now();
    let next = Infinity;
    for (const r of records.records()) {
      if (!r.controller || r.destroyed) continue;
      next = Math.min(next, r.controller.deadline > now ? r.controller.deadline : now + checkEveryMs);
    }
    if (next >= armedAt) return; // armed as soon or sooner (Infinity: no timer, none needed)
    clearTimeout(timer);
    timer = undefined;
    armedAt = next;
    if (next === Infinity) return;
    // An hour at most: setTimeout's own limit is 24.8 days, and a deadline can only come nearer.
    timer = setTimeout(() => {
      timer = undefined;
      armedAt = Infinity;
      checkLost();
      arm();
    }, Math.min(next - now, 3_600_000));
    timer.unref?.();
  };
  const offArm = records.changes.on(arm);
  arm();

  const onExit = (e: RunnerEvent | ShoalEvent) => {
    switch (e.type) {
      case "task:exited":
        if (!e.willRestart && !e.stopped) ended(e);
        return;
      case "task:failed":
        return ended(e);
    }
  };
  const ended = (e: Extract<RunnerEvent | ShoalEvent, { type: "task:exited" | "task:failed" }>) => {
    const failed = e.type === "task:failed";
    const cur = records.byTopology(e.topologyId);
    const t = cur?.tasks[e.path];
    if (!cur || !t || cur.state === "DONE" || !isArbiter()) return;
    const code = failed ? null : e.code;
    if (!failed && code === 0 && !e.signal) {
      void accept({
        ...cur,
        seq: cur.seq + 1,
        tasks: { ...cur.tasks, [e.path]: { ...t, state: "DONE" } },
        updatedAt: Date.now(),
      });
      return;
    }
    const how = failed
      ? `failed: ${e.reason}`
      : e.signal
      ? `was killed by ${e.signal}`
      : `exited with code ${code}`;
    const tasks = { ...cur.tasks, [e.path]: { ...t, state: "ERROR" as const, reason: `crashed: ${how}` } };
    if (t.critical && cur.state !== "ERROR") {
      // `force` and `accept` merge here at once; their gossip failures are the digest sync's to repair.
      void force(cur, `Critical task "${e.path}" ${how} in ${cur.state}`, { tasks }).catch(() => {});
    } else {
      log.warn("non-critical environment task crashed", { env: cur.id, path: e.path, how });
      // As above: merged here at once, gossip repaired by the digest sync.
      void accept({ ...cur, seq: cur.seq + 1, tasks, updatedAt: Date.now() }).catch(() => {});
    }
  };
  const offLocal = init.taskEvents.on(onExit);
  const offGossip = node.subscribe(EVENTS_TOPIC, EventMessageSchema, (events) => {
    for (const e of events) {
      if (e.type === "env:claimed") claimedOn(records, e);
      else onExit(e);
    }
  });

  return {
    records,
    async taskError(topologyId, path, message) {
      if (isArbiter()) return await handle({ op: "task-error", topologyId, path, message });
      return await toArbiter({ op: "task-error", topologyId, path, message });
    },
    stop() {
      offArm();
      clearTimeout(timer);
      offLocal();
      offGossip();
      records.stop();
    },
  };
}

/** Longest a batch of answers waits before it goes out: the controller's progress moves per answer. */
const ANSWER_TICK_MS = 20;

/** Serves {@linkcode ENV_TRANSITION_PROTOCOL}: a transition sent for a controller, answers streamed back. */
async function serveTransitions(node: MeshNode, commands: Pick<CustomCommands, "send">): Promise<void> {
  await node.libp2p.handle(ENV_TRANSITION_PROTOCOL, async (stream, connection) => {
    const from = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 * 1024 });
    let req;
    try {
      req = decode(
        (await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray(),
        EnvTransitionRequestSchema,
        {
          what: ENV_TRANSITION_PROTOCOL,
          maxBytes: 2 * 1024 * 1024,
        },
      );
    } catch (err) {
      node.malformed(ENV_TRANSITION_PROTOCOL, err);
      stream.abort(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    // Frames go out one after the other; answers that come while one is written join the next.
    let pending: { path: string; payload: Uint8Array }[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    let writing = Promise.resolve();
    const write = (frame: EnvTransitionFrame) => {
      // A write fails only when the caller went away: it has no one left to answer.
      writing = writing.then(() => lp.write(encode(frame))).catch(() => {});
      return writing;
    };
    const flush = () => {
      clearTimeout(timer);
      timer = undefined;
      if (pending.length === 0) return writing;
      const answers = pending;
      pending = [];
      return write({ answers });
    };
    try {
      const res = await commands.send({
        topologyId: req.topologyId,
        condition: "",
        payload: req.payload,
        sender: { id: `tool:${from}`, path: "" },
      }, {
        waitReplies: req.waitReplies,
        timeoutMs: req.timeoutMs,
        onReply: (r) => {
          pending.push({ path: r.sender.path, payload: r.payload });
          timer ??= setTimeout(() => void flush(), ANSWER_TICK_MS);
        },
      });
      await flush();
      await write({ done: true, timedOut: res.timedOut });
      await stream.close();
    } catch (err) {
      clearTimeout(timer);
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }, { maxInboundStreams: 256 });
}

/** Applies an `env:claimed` event to the record held here (see {@linkcode applyClaim}). */
function claimedOn(records: EnvRecords, e: EventOf<"env:claimed">): void {
  const cur = records.get(e.envId);
  const next = cur && applyClaim(cur, e);
  if (next) records.merge(next);
}

/**
 * The pool as a commander (the CLI, a tool) uses it: queue a topology, read the queue as the scheduler
 * holds it, cancel a queued topology. Any agent accepts a queue request and gossips it; the status comes
 * from the scheduler, which alone knows the starting order and counts.
 *
 * @module
 */
import { request } from "../mesh/mod.ts";
import { type CommanderInit, expandRecord, fetchMembers } from "../commander/mod.ts";
import type { Member } from "../mesh/mod.ts";
import { PoolError } from "./errors.ts";
import {
  POOL_PROTOCOL,
  type PoolRequest,
  type PoolResponse,
  PoolResponseSchema,
  type QueueEntry,
} from "./protocols.ts";
import { schedulerOf } from "./service.ts";

async function poolRequest(init: CommanderInit, peer: string, req: PoolRequest): Promise<PoolResponse> {
  return await request(init.node, peer, POOL_PROTOCOL, req, {
    schema: PoolResponseSchema,
    maxBytes: 64 * 1024 * 1024,
    timeoutMs: 15_000,
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

/** The scheduler as the `via` agent's view has it: its ID when that is `via`, else a dialable multiaddr. */
export function schedulerAddress(init: CommanderInit, members: readonly Member[]): string {
  const id = schedulerOf(members);
  if (!id || id === init.via) return init.via;
  const addr = members.find((m) => m.id === id)?.addrs.find((a) => !a.includes("/0.0.0.0/"));
  if (!addr) return id;
  return addr.includes("/p2p/") ? addr : `${addr}/p2p/${id}`;
}

/** What to queue. */
export interface QueueRequest {
  id?: string;
  file: string;
  source: string;
  vars: Record<string, string>;
  /** Higher starts first (default 0). */
  priority?: number;
  /** Fair-share group (default: the topology ID). */
  share?: string;
  /** Start it as an environment (`shoal env create --queue`): its control rules and who asked. */
  env?: NonNullable<QueueEntry["env"]>;
}

/** Queues a topology; resolves with its entry once an agent recorded it. Throws {@linkcode PoolError}. */
export async function queueTopology(init: CommanderInit, q: QueueRequest): Promise<QueueEntry> {
  const expanded = expandRecord(q);
  const id = q.id ?? expanded.name.replace(/[^A-Za-z0-9#@~_-]/g, "_");
  const now = Date.now();
  const res = await poolRequest(init, init.via, {
    op: "queue",
    entry: {
      id,
      name: expanded.name,
      priority: q.priority ?? 0,
      share: q.share ?? id,
      state: "queued",
      version: 0,
      tasks: expanded.tasks.length,
      source: q.source,
      file: q.file,
      vars: q.vars,
      queuedAt: now,
      queuedBy: init.node.peerId,
      updatedAt: now,
      ...(q.env ? { env: q.env } : {}),
    },
  });
  if (!res.ok || !res.entry) throw new PoolError(res.reason ?? `Topology "${id}" was not queued`);
  return res.entry;
}

/** The pool as the scheduler sees it, with the membership view it was read with. */
export interface PoolView {
  entries: QueueEntry[];
  order: NonNullable<PoolResponse["order"]>;
  progress: NonNullable<PoolResponse["progress"]>;
  scheduler: string;
  members: Member[];
}

/** Reads the queue from the scheduler (falling back to the `via` agent's copy should it not answer). */
export async function fetchPool(init: CommanderInit): Promise<PoolView> {
  const members = await fetchMembers(init);
  const target = schedulerAddress(init, members);
  let res: PoolResponse;
  try {
    res = await poolRequest(init, target, { op: "list" });
  } catch {
    res = await poolRequest(init, init.via, { op: "list" });
  }
  return {
    entries: res.entries ?? [],
    order: res.order ?? [],
    progress: res.progress ?? [],
    scheduler: res.scheduler ? res.from : (schedulerOf(members) ?? res.from),
    members,
  };
}

/** Cancels a queued topology. Throws {@linkcode PoolError} when it is not queued. */
export async function cancelQueued(init: CommanderInit, id: string): Promise<QueueEntry> {
  const res = await poolRequest(init, init.via, { op: "cancel", id, by: init.node.peerId });
  if (!res.ok || !res.entry) throw new PoolError(res.reason ?? `Topology "${id}" was not cancelled`);
  return res.entry;
}

/** Waits until a queued topology left the queue (started, done or cancelled); returns its entry. */
export async function waitStarted(
  init: CommanderInit,
  id: string,
  options: { onWaiting?: (position: number | undefined, waiting: string) => void; pollMs?: number } = {},
): Promise<QueueEntry> {
  for (;;) {
    const view = await fetchPool(init);
    const e = view.entries.find((x) => x.id === id);
    if (e && e.state !== "queued" && e.state !== "starting") return e;
    const o = view.order.find((x) => x.id === id);
    options.onWaiting?.(o?.position, o?.waiting ?? e?.state ?? "queued");
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1_000));
    init.signal?.throwIfAborted();
  }
}

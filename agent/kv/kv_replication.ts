/**
 * Replicating the key-value store between agents: local writes are coalesced into one gossip message per
 * short tick (one message per write would saturate gossipsub in an all-to-all exchange), and an
 * anti-entropy exchange brings back what gossip lost — gossip published during a partition is never
 * delivered afterwards: on join, and whenever a peer's store digest (carried on every membership probe and
 * ack, so it costs no extra round) differs from ours twice in a row. Tools read through the same protocol.
 *
 * @module
 */
import * as v from "valibot";
import { Coalescer, handleRequests, type Membership, type MeshNode, request } from "../../mesh/mod.ts";
import { HybridClock, isVersion } from "./hlc.ts";
import { type KvEntry, type KvStore, MAX_VALUE_BYTES } from "./kv_store.ts";

/** Gossip topic of key-value updates. */
export const KV_TOPIC = "/shoal/kv/1";
/** Key of the store's digest among the membership digests. */
export const KV_DIGEST = "kv";
/** Request protocol: anti-entropy sync and tools' reads. */
export const KV_PROTOCOL = "/shoal/kv/1.0.0";

const Name = v.pipe(v.string(), v.maxLength(1024));

/** An entry as read from the wire. */
export const KvEntrySchema = v.object({
  topologyId: Name,
  /** Property name. */
  key: Name,
  /** `""` for `global` properties; the collection instance path for `collection` ones. */
  scope: Name,
  /** Writer's DDS task ID. */
  sender: v.pipe(v.string(), v.maxLength(32)),
  /** Writer's runtime path. */
  path: Name,
  value: v.pipe(v.string(), v.maxLength(MAX_VALUE_BYTES)),
  /** HLC version (see `hlc.ts`). */
  version: v.pipe(v.string(), v.check(isVersion, "not a version")),
  /** A tombstone: the writer deleted its value. */
  deleted: v.boolean(),
});

/** Schema of one gossiped batch of writes. */
export const KvBatchSchema = v.object({ by: v.string(), entries: v.array(KvEntrySchema) });

/** Requests of {@linkcode KV_PROTOCOL}. */
export const KvRequestSchema = v.variant("op", [
  v.object({ op: v.literal("digest") }),
  /** Sends every entry of the caller; the answer holds every entry of the callee. */
  v.object({ op: v.literal("exchange"), entries: v.array(KvEntrySchema) }),
  /** A tool's read of one topology's entries (tombstones included), optionally one key or a prefix. */
  v.object({ op: v.literal("list"), topologyId: Name, key: v.optional(Name), prefix: v.optional(Name) }),
]);

/** Responses of {@linkcode KV_PROTOCOL}. */
export const KvResponseSchema = v.object({
  digest: v.optional(v.string()),
  entries: v.optional(v.array(KvEntrySchema)),
});

/** Gossip messages are split at about this many bytes. */
const BATCH_BYTES = 512 * 1024;

/** What {@linkcode KvReplication} needs. */
export interface KvReplicationInit {
  node: MeshNode;
  store: KvStore;
  /** Where to find peers for anti-entropy; without it, only `syncWith` syncs. */
  membership?: Membership;
  clock?: HybridClock;
  /**
   * Coalescing tick (default 20 ms): a write after a quiet tick goes out at once (with whatever arrives in
   * the same turn of the event loop); writes within `tickMs` of the last message share the next one.
   */
  tickMs?: number;
  /** Shortest time between two digest-driven exchanges with one peer (default 2 s; 0 = never exchange). */
  antiEntropyMs?: number;
}

/** Gossip and anti-entropy of one agent's store. */
export class KvReplication implements AsyncDisposable {
  readonly clock: HybridClock;
  readonly #node: MeshNode;
  readonly #store: KvStore;
  readonly #membership: Membership | undefined;
  readonly #aeMs: number;
  readonly #out: Coalescer<KvEntry>;
  #offDigests: (() => void) | undefined;
  #off: (() => void) | undefined;
  #syncing = false;
  #stopped = false;

  constructor(init: KvReplicationInit) {
    this.#node = init.node;
    this.#store = init.store;
    this.#membership = init.membership;
    this.clock = init.clock ?? new HybridClock();
    this.#aeMs = init.antiEntropyMs ?? 2_000;
    this.#out = new Coalescer<KvEntry>({
      publish: (entries) => this.#node.publish(KV_TOPIC, { by: this.#node.peerId, entries }),
      // Lost gossip is repaired by the digest sync (the store's digest rides on every probe).
      onError: () => {},
      windowMs: init.tickMs ?? 20,
      mode: "leading",
      sizeOf: (e) => e.value.length * 3 + e.path.length + e.key.length + e.scope.length + 96,
      maxBytes: BATCH_BYTES,
    });
  }

  /** Subscribes to the gossip, serves the protocol, starts periodic anti-entropy. */
  async start(): Promise<void> {
    this.#off = this.#node.subscribe(KV_TOPIC, KvBatchSchema, (batch) => this.#mergeAll(batch.entries));
    await handleRequests(this.#node, KV_PROTOCOL, {
      schema: KvRequestSchema,
      maxBytes: 256 * 1024 * 1024,
      maxResponseBytes: 256 * 1024 * 1024,
      handler: (req) => {
        if (req.op === "digest") return { digest: this.#store.digest() };
        if (req.op === "exchange") {
          const mine = this.#store.entries();
          this.#mergeAll(req.entries);
          return { entries: mine };
        }
        const entries = this.#store.entries(req.topologyId).filter((e) =>
          (req.key === undefined || e.key === req.key) &&
          (req.prefix === undefined || e.key.startsWith(req.prefix))
        );
        return { entries };
      },
    });
    if (this.#aeMs > 0 && this.#membership) {
      const differing = new Map<string, number>();
      const last = new Map<string, number>();
      const unprovide = this.#membership.provideDigest(KV_DIGEST, () => this.#store.digest());
      const off = this.#membership.digests.on(({ id, digests }) => {
        const theirs = digests[KV_DIGEST];
        if (theirs === undefined || theirs === this.#store.digest()) {
          differing.delete(id);
          return;
        }
        const times = (differing.get(id) ?? 0) + 1;
        differing.set(id, times);
        if (times < 2 || this.#syncing || Date.now() - (last.get(id) ?? 0) < this.#aeMs) return;
        last.set(id, Date.now());
        differing.delete(id);
        // A failed sync is tried again when the digests still differ after the next probes.
        void this.syncWith(id, { signal: AbortSignal.timeout(30_000) }).catch(() => {});
      });
      this.#offDigests = () => {
        off();
        unprovide();
      };
    }
  }

  /** Stores a local write (versioned now) and queues it for gossip; returns the stored entry. */
  write(entry: Omit<KvEntry, "version">): KvEntry {
    const full = { ...entry, version: this.clock.tick() };
    if (this.#store.merge(full)) this.#out.add(full);
    return full;
  }

  /** Publishes the queued writes now, in messages of bounded size. */
  flush(): Promise<void> {
    return this.#out.flush();
  }

  /** Compares digests with `peer` and, when they differ, exchanges every entry. Returns entries gained. */
  async syncWith(peer: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    this.#syncing = true;
    try {
      const signal = options.signal ? { signal: options.signal } : {};
      const { digest } = await request(this.#node, peer, KV_PROTOCOL, { op: "digest" }, {
        schema: KvResponseSchema,
        ...signal,
      });
      if (digest === this.#store.digest()) return 0;
      const res = await request(this.#node, peer, KV_PROTOCOL, {
        op: "exchange",
        entries: this.#store.entries(),
      }, { schema: KvResponseSchema, maxBytes: 256 * 1024 * 1024, timeoutMs: 30_000, ...signal });
      return this.#mergeAll(res.entries ?? []);
    } finally {
      this.#syncing = false;
    }
  }

  #mergeAll(entries: KvEntry[]): number {
    let n = 0;
    for (const e of entries) {
      this.clock.observe(e.version);
      if (this.#store.merge(e)) n++;
    }
    return n;
  }

  /** Stops gossiping and syncing (pending writes are flushed). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#offDigests?.();
    this.#off?.();
    await this.#out.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** A tool's read of a topology's entries through `agent` (tools are light peers; they hold no replica). */
export async function listEntries(
  node: MeshNode,
  agent: string,
  query: { topologyId: string; key?: string; prefix?: string },
  options: { signal?: AbortSignal } = {},
): Promise<KvEntry[]> {
  const res = await request(node, agent, KV_PROTOCOL, { op: "list", ...query }, {
    schema: KvResponseSchema,
    maxBytes: 256 * 1024 * 1024,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return res.entries ?? [];
}

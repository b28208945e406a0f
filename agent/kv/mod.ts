/**
 * Key-values: the agent's versioned store (last writer wins by hybrid logical clock), its replication
 * between agents (coalesced gossip, digest sync) and the sync after a partition heals.
 *
 * @module
 */
export { syncOnReturn } from "./heal_sync.ts";
export { formatVersion, HybridClock, parseVersion } from "./hlc.ts";
export { KV_PROTOCOL, KV_TOPIC, KvBatchSchema, KvReplication, listEntries } from "./kv_replication.ts";
export { KvStore, MAX_VALUE_BYTES, toValue } from "./kv_store.ts";
export type { KvEntry } from "./kv_store.ts";

/**
 * libp2p writes to its peer store on every stream: each side of every new stream merges the negotiated
 * protocol into the remote peer's entry, and gossipsub merges a tag per topic on every graft. Each merge
 * takes a write lock, decodes the peer's protobuf, compares, encodes and stores it again, even when nothing
 * changes. Profiled while 50 agents formed a mesh, peer-store merges were about an eighth of all CPU, nearly
 * all of them changing nothing. This wraps the store so that a merge which would change nothing — protocols
 * and addresses already held, tags already at that value — answers from the last entry the store returned,
 * without the lock or a write. Anything else (a new protocol, an address, metadata, a patch, a save, a
 * delete) goes to the store as before and refreshes the remembered entry. An entry older than
 * {@linkcode REFRESH_MS} is merged for real again, which also refreshes the store's own `updated` time
 * (it expires peers by it).
 *
 * @module
 */
import type { Peer, PeerData, PeerId, PeerStore } from "@libp2p/interface";

/** A remembered entry answers redundant merges for this long; then one real merge refreshes it. */
export const REFRESH_MS = 60_000;

/** Marks a wrapped store, holding its skip counter. */
const SKIPPED = Symbol("shoal.skippedMerges");

interface Known {
  peer: Peer;
  at: number;
  protocols: Set<string>;
  addrs: Set<string>;
}

/** True when merging `data` into `k` would change nothing. */
function redundant(k: Known, data: PeerData): boolean {
  for (const key of Object.keys(data) as (keyof PeerData)[]) {
    if (data[key] === undefined) continue;
    if (key === "protocols") {
      if (!data.protocols!.every((p) => k.protocols.has(p))) return false;
    } else if (key === "multiaddrs") {
      if (!data.multiaddrs!.every((a) => k.addrs.has(a.toString()))) return false;
    } else if (key === "tags") {
      for (const [name, tag] of Object.entries(data.tags!)) {
        const held = k.peer.tags.get(name);
        if (
          tag === undefined ? held !== undefined : held?.value !== (tag.value ?? 0) || tag.ttl !== undefined
        ) {
          return false;
        }
      }
    } else return false;
  }
  return true;
}

/**
 * Makes `store`'s `merge` skip merges that would change nothing (see the module's doc); returns how many it
 * skipped so far. Idempotent per store.
 */
export function skipRedundantMerges(store: PeerStore, now: () => number = Date.now): () => number {
  const s = store as PeerStore & { [SKIPPED]?: () => number };
  if (s[SKIPPED]) return s[SKIPPED];
  const known = new Map<string, Known>();
  let skipped = 0;
  const remember = (peer: Peer): Peer => {
    known.set(peer.id.toString(), {
      peer,
      at: now(),
      protocols: new Set(peer.protocols),
      addrs: new Set(peer.addresses.map((a) => a.multiaddr.toString())),
    });
    return peer;
  };
  const merge = store.merge.bind(store);
  const patch = store.patch.bind(store);
  const save = store.save.bind(store);
  const del = store.delete.bind(store);
  const forget = (id: PeerId) => known.delete(id.toString());
  store.merge = (id, data, options) => {
    const k = known.get(id.toString());
    if (k && now() - k.at < REFRESH_MS && redundant(k, data)) {
      skipped++;
      return Promise.resolve(k.peer);
    }
    return merge(id, data, options).then(remember, (err) => {
      forget(id);
      throw err;
    });
  };
  store.patch = (id, data, options) => {
    forget(id);
    return patch(id, data, options).then(remember);
  };
  store.save = (id, data, options) => {
    forget(id);
    return save(id, data, options).then(remember);
  };
  store.delete = (id, options) => {
    forget(id);
    return del(id, options);
  };
  s[SKIPPED] = () => skipped;
  return s[SKIPPED];
}

import { assertEquals } from "../tests/_assert.ts";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { createMeshNode, createSwarmKey } from "./mod.ts";
import { REFRESH_MS, skipRedundantMerges } from "./_peer_store_cache.ts";

Deno.test("peer store: merges that change nothing are skipped; changes, patches and old entries reach the store", async () => {
  await using node = await createMeshNode({ swarmKey: createSwarmKey() });
  const store = node.libp2p.peerStore;
  let t = 0;
  // The node's store is wrapped already (with the real clock): wrap a view of it, with a clock to drive.
  const view = {
    merge: store.merge.bind(store),
    patch: store.patch.bind(store),
    save: store.save.bind(store),
    delete: store.delete.bind(store),
    get: store.get.bind(store),
  } as unknown as typeof store;
  const skipped = skipRedundantMerges(view, () => t);
  const id = peerIdFromPrivateKey(await generateKeyPair("Ed25519"));
  const a = multiaddr("/ip4/127.0.0.1/tcp/4001");

  await view.merge(id, { protocols: ["/a/1"], multiaddrs: [a] });
  assertEquals(skipped(), 0);
  await view.merge(id, { protocols: ["/a/1"] });
  await view.merge(id, { multiaddrs: [a] });
  await view.merge(id, { tags: { t: undefined } });
  assertEquals(skipped(), 3, "protocols and addresses held, a tag absent that is removed");

  await view.merge(id, { protocols: ["/b/1"] });
  assertEquals(skipped(), 3, "a new protocol is merged");
  assertEquals((await store.get(id)).protocols.sort(), ["/a/1", "/b/1"]);
  await view.merge(id, { tags: { topic: { value: 100 } } });
  await view.merge(id, { tags: { topic: { value: 100 } } });
  assertEquals(skipped(), 4, "the same tag again is skipped");
  await view.merge(id, { tags: { topic: { value: 50 } } });
  assertEquals((await store.get(id)).tags.get("topic")?.value, 50, "another value is merged");
  await view.merge(id, { metadata: { k: new Uint8Array([1]) } });
  assertEquals(skipped(), 4, "metadata always goes to the store");

  // A patch replaces the protocols: what the store now holds decides.
  await view.patch(id, { protocols: ["/c/1"] });
  await view.merge(id, { protocols: ["/a/1"] });
  assertEquals(skipped(), 4);
  assertEquals((await store.get(id)).protocols.sort(), ["/a/1", "/c/1"]);

  // An entry older than REFRESH_MS is merged for real once, then remembered again.
  t += REFRESH_MS;
  await view.merge(id, { protocols: ["/a/1"] });
  assertEquals(skipped(), 4);
  await view.merge(id, { protocols: ["/a/1"] });
  assertEquals(skipped(), 5);

  await view.delete(id);
  await view.merge(id, { protocols: ["/a/1"] });
  assertEquals(skipped(), 5, "a deleted peer is merged anew");
  assertEquals((await store.get(id)).protocols, ["/a/1"]);
});

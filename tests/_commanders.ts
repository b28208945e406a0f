/**
 * Commanders run by the test itself (the same code as `shoal topology activate`), on light peers whose lease
 * requests can be held back: several commanders then place on one view before any of them leases, a race
 * that two CLI processes only win now and then. Also the topology record an agent holds, as commanders read it.
 *
 * @module
 */
import type { Stream } from "@libp2p/interface";
import { type TopologyRecord } from "../agent/mod.ts";
import { type CommanderInit, fetchTopologies } from "../commander/mod.ts";
import { LEASE_PROTOCOL } from "../agent/wire/mod.ts";
import { createMeshNode, MeshNode, readSwarmKey } from "../mesh/mod.ts";
import { PIPE_PROTOCOL } from "../mesh/_rpc_pipe.ts";
import type { TestAgent, TestMesh } from "./_harness.ts";

/** A light peer that records each lease request's agent and holds it until `gate` resolves. */
class GatedNode extends MeshNode {
  /** Agents asked for a lease, in order. */
  readonly leases: string[] = [];
  readonly #gate: () => Promise<void>;

  constructor(inner: MeshNode, swarmKey: Uint8Array, gate: () => Promise<void>) {
    super(inner.libp2p, { swarmKey });
    this.#gate = gate;
  }

  override async openStream(
    peer: string,
    protocol: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<Stream> {
    if (protocol === PIPE_PROTOCOL) {
      // As a peer without the pipe: every request then opens a stream of its own, where leases are held.
      throw Object.assign(new Error(`${PIPE_PROTOCOL} is not used by this test peer`), {
        name: "UnsupportedProtocolError",
      });
    }
    if (protocol === LEASE_PROTOCOL) {
      this.leases.push(peer);
      await this.#gate();
    }
    return await super.openStream(peer, protocol, options);
  }
}

/** One commander of {@linkcode racingCommanders}. */
export interface RacingCommander {
  init: CommanderInit;
  /** Agents it asked for a lease, in order. */
  leases: string[];
}

/** Commanders that race, stopped on dispose. */
export interface RacingCommanders extends AsyncDisposable {
  commanders: RacingCommander[];
  /** True once all held requests were made (false if they were let go after the 20 s deadline). */
  raced(): boolean;
}

/**
 * `count` commanders on `mesh`, all asking `via` for the view, whose first `held` lease requests (all
 * commanders together) wait until the last of them is made; later ones go at once.
 */
export async function racingCommanders(
  mesh: TestMesh,
  options: { count: number; held: number; via?: string },
): Promise<RacingCommanders> {
  const swarmKey = await readSwarmKey(mesh.swarmKeyFile);
  let waiting = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  // A plan other than the test expects must fail its assertions, not hang the test.
  const deadline = setTimeout(release, 20_000);
  const gate = async () => {
    if (waiting >= options.held) return;
    if (++waiting === options.held) {
      clearTimeout(deadline);
      release();
    }
    await released;
  };
  const nodes = await Promise.all(
    Array.from({ length: options.count }, async () => {
      const node = new GatedNode(await createMeshNode({ swarmKey }), swarmKey, gate);
      await Promise.all(mesh.agents.map((a) => node.dial(a.addrs[0]!)));
      return node;
    }),
  );
  const via = options.via ?? mesh.agents[0]!.id;
  return {
    commanders: nodes.map((node) => ({ init: { node, via, sessionId: "" }, leases: node.leases })),
    raced: () => waiting === options.held,
    async [Symbol.asyncDispose]() {
      clearTimeout(deadline);
      release();
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

/** The topology record `id` as agent `via` holds it (what failover and orphan checks act on). */
export async function topologyRecord(
  mesh: TestMesh,
  via: TestAgent,
  id: string,
): Promise<TopologyRecord | undefined> {
  await using node = await createMeshNode({ swarmKey: await readSwarmKey(mesh.swarmKeyFile) });
  await node.dial(via.addrs[0]!);
  return (await fetchTopologies({ node, via: via.id, sessionId: "" })).find((r) => r.id === id);
}

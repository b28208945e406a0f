/**
 * The seed: the `shoal stage put` process serving chunks of local files to the agents that pull them,
 * optionally at a limited rate. Agents ask it only for pieces no other agent holds yet.
 *
 * @module
 */
import { open } from "node:fs/promises";
import { handleRequests, type MeshNode } from "../mesh/mod.ts";
import type { LocalManifest } from "./manifest.ts";
import { PieceTable } from "./manifest.ts";
import { CHUNK_PROTOCOL, ChunkRequestSchema, HAVE_PROTOCOL, HaveRequestSchema } from "./types.ts";

/** What the seed served. */
export interface SeedStats {
  chunks: number;
  bytes: number;
}

/** A seed being served; `close()` stops serving. */
export interface Seed extends AsyncDisposable {
  stats: SeedStats;
  close(): Promise<void>;
}

/**
 * Serves `local`'s chunks and an "all" have-map on `node`; `rateBytesPerSec` limits how fast it sends.
 * Requests for other manifests get an empty have-map and `RangeError`s.
 */
export async function serveSeed(
  node: MeshNode,
  local: LocalManifest,
  options: { rateBytesPerSec?: number } = {},
): Promise<Seed> {
  const table = new PieceTable(local.manifest);
  const stats: SeedStats = { chunks: 0, bytes: 0 };
  const rate = options.rateBytesPerSec;
  let nextFree = 0;
  await handleRequests(node, HAVE_PROTOCOL, {
    schema: HaveRequestSchema,
    handler: ({ manifest }) =>
      manifest === local.id ? { all: true } : { all: false, bits: new Uint8Array(0) },
  });
  await handleRequests(node, CHUNK_PROTOCOL, {
    schema: ChunkRequestSchema,
    maxResponseBytes: 65 * 1024 * 1024,
    handler: async ({ manifest, piece }) => {
      if (manifest !== local.id) throw new RangeError(`This seed does not hold manifest ${manifest}`);
      const at = table.locate(piece);
      if (rate) {
        const now = Date.now();
        const start = Math.max(now, nextFree);
        nextFree = start + (at.length / rate) * 1000;
        if (nextFree > now) await new Promise((r) => setTimeout(r, nextFree - now));
      }
      const fh = await open(local.sources[at.content]!, "r");
      try {
        const data = new Uint8Array(at.length);
        let got = 0;
        while (got < at.length) {
          const { bytesRead } = await fh.read(data, got, at.length - got, at.offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        stats.chunks++;
        stats.bytes += got;
        return { data: data.subarray(0, got) };
      } finally {
        await fh.close();
      }
    },
  });
  const close = async () => {
    for (const p of [HAVE_PROTOCOL, CHUNK_PROTOCOL]) {
      node.localHandlers.delete(p);
      await node.libp2p.unhandle(p).catch(() => {});
    }
  };
  return { stats, close, [Symbol.asyncDispose]: close };
}

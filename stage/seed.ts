/**
 * The seed: this process serving chunks of local files (or bytes in memory) to the agents that pull them,
 * optionally at a limited rate. Agents ask it only for pieces no other agent holds yet.
 *
 * @module
 */
import { open } from "node:fs/promises";
import type { MeshNode } from "../mesh/mod.ts";
import { Bitmap } from "./bitmap.ts";
import { chunkServer } from "./chunk_server.ts";
import type { LocalManifest } from "./manifest.ts";
import { PieceTable } from "./manifest.ts";

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

/** Serves `local`'s chunks on `node`; `rateBytesPerSec` limits how fast it sends. */
export async function serveSeed(
  node: MeshNode,
  local: LocalManifest,
  options: { rateBytesPerSec?: number } = {},
): Promise<Seed> {
  const table = new PieceTable(local.manifest);
  const stats: SeedStats = { chunks: 0, bytes: 0 };
  const rate = options.rateBytesPerSec;
  let nextFree = 0;
  const server = await chunkServer(node);
  const remove = server.provide(local.id, {
    complete: true,
    bitmap: () => Bitmap.full(table.size),
    has: (piece) => piece >= 0 && piece < table.size,
    async read(piece) {
      const at = table.locate(piece);
      if (rate) {
        const now = Date.now();
        const start = Math.max(now, nextFree);
        nextFree = start + (at.length / rate) * 1000;
        if (nextFree > now) await new Promise((r) => setTimeout(r, nextFree - now));
      }
      const source = local.sources[at.content]!;
      let data: Uint8Array;
      if (typeof source !== "string") data = source.subarray(at.offset, at.offset + at.length);
      else {
        const fh = await open(source, "r");
        try {
          data = new Uint8Array(at.length);
          let got = 0;
          while (got < at.length) {
            const { bytesRead } = await fh.read(data, got, at.length - got, at.offset + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          data = data.subarray(0, got);
        } finally {
          await fh.close();
        }
      }
      stats.chunks++;
      stats.bytes += data.byteLength;
      return data;
    },
  });
  const close = () => {
    remove();
    return Promise.resolve();
  };
  return { stats, close, [Symbol.asyncDispose]: close };
}

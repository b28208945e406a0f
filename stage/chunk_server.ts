/**
 * One peer's answers to {@linkcode HAVE_PROTOCOL} and {@linkcode CHUNK_PROTOCOL}, whatever holds the
 * pieces: the agent's cache (a fallback looking manifests up) and any seeds this process serves at the
 * moment (a `shoal stage put`, a commander shipping a lease's executable). Handlers are registered once
 * per node.
 *
 * @module
 */
import { handleRequests, type MeshNode } from "../mesh/mod.ts";
import type { Bitmap } from "./bitmap.ts";
import { CHUNK_PROTOCOL, ChunkRequestSchema, HAVE_PROTOCOL, HaveRequestSchema } from "./types.ts";

/** Pieces of one manifest that this peer can send. */
export interface PieceProvider {
  readonly complete: boolean;
  bitmap(): Bitmap;
  has(piece: number): boolean;
  read(piece: number): Promise<Uint8Array>;
}

/** The pieces this peer serves. */
export class ChunkServer {
  readonly #provided = new Map<string, PieceProvider[]>();
  /** Looks up manifests not provided explicitly (the agent's cache). */
  fallback: ((manifest: string) => Promise<PieceProvider | undefined>) | undefined;

  /** Serves `provider` for `manifest` until the returned function is called. */
  provide(manifest: string, provider: PieceProvider): () => void {
    const list = this.#provided.get(manifest) ?? [];
    list.push(provider);
    this.#provided.set(manifest, list);
    return () => {
      const rest = (this.#provided.get(manifest) ?? []).filter((p) => p !== provider);
      if (rest.length) this.#provided.set(manifest, rest);
      else this.#provided.delete(manifest);
    };
  }

  /** The best provider of `manifest`: a complete one first. */
  async lookup(manifest: string): Promise<PieceProvider | undefined> {
    const list = this.#provided.get(manifest);
    if (list?.length) return list.find((p) => p.complete) ?? list[0];
    return await this.fallback?.(manifest);
  }
}

const servers = new WeakMap<MeshNode, Promise<ChunkServer>>();

/** The chunk server of `node`, registering its protocol handlers the first time. */
export function chunkServer(node: MeshNode): Promise<ChunkServer> {
  let s = servers.get(node);
  if (!s) {
    s = (async () => {
      const server = new ChunkServer();
      await handleRequests(node, HAVE_PROTOCOL, {
        schema: HaveRequestSchema,
        handler: async ({ manifest }) => {
          const p = await server.lookup(manifest);
          if (!p) return { all: false, bits: new Uint8Array(0) };
          return p.complete ? { all: true } : { all: false, bits: p.bitmap().bytes };
        },
      });
      await handleRequests(node, CHUNK_PROTOCOL, {
        schema: ChunkRequestSchema,
        maxResponseBytes: 65 * 1024 * 1024,
        handler: async ({ manifest, piece }) => {
          const p = await server.lookup(manifest);
          if (!p || !p.has(piece)) throw new RangeError(`Piece ${piece} of manifest ${manifest} is not here`);
          return { data: await p.read(piece) };
        },
      });
      return server;
    })();
    servers.set(node, s);
  }
  return s;
}

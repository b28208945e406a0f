/**
 * A manifest's pieces on one peer: the content files behind them, which pieces are here, and reading one.
 *
 * @module
 */
import { Bitmap } from "./bitmap.ts";
import type { ContentFile } from "./content_file.ts";
import { type PieceTable, sha256 } from "./manifest.ts";
import { ChunkCorruptError } from "./errors.ts";

/** Pieces of a manifest held by this peer. */
export class Holding {
  readonly id: string;
  readonly table: PieceTable;
  readonly files: readonly ContentFile[];

  constructor(id: string, table: PieceTable, files: readonly ContentFile[]) {
    this.id = id;
    this.table = table;
    this.files = files;
  }

  /** True when every piece is here. */
  get complete(): boolean {
    return this.files.every((f) => f.have.full);
  }

  /** Pieces held, of {@linkcode PieceTable.size}. */
  get pieces(): number {
    return this.files.reduce((n, f) => n + f.have.count, 0);
  }

  /** Bytes of the pieces held. */
  get bytesHeld(): number {
    return this.files.reduce((n, f) => n + f.bytesHeld, 0);
  }

  /** The pieces held, as one bitmap over the manifest. */
  bitmap(): Bitmap {
    const all = new Bitmap(this.table.size);
    this.files.forEach((f, c) => all.setFrom(f.have, this.table.start(c)));
    return all;
  }

  has(piece: number): boolean {
    const at = this.table.locate(piece);
    return this.files[at.content]!.have.has(at.chunk);
  }

  /** Reads piece `piece`; `RangeError` when it is not here. */
  read(piece: number): Promise<Uint8Array> {
    const at = this.table.locate(piece);
    return this.files[at.content]!.read(at.chunk);
  }

  /**
   * Verifies `data` against piece `piece`'s SHA-256 and writes it in place.
   *
   * @throws {ChunkCorruptError} when the bytes do not match (nothing is written)
   */
  async write(piece: number, data: Uint8Array, from: string): Promise<void> {
    const at = this.table.locate(piece);
    const hash = sha256(data);
    if (data.byteLength !== at.length || !equal(hash, at.hash)) throw new ChunkCorruptError(from, piece);
    await this.files[at.content]!.write(at.chunk, data);
  }

  /** Closes the content files (pulls stay resumable). */
  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

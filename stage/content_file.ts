/**
 * One content in the agent's content cache while it is pulled and after: chunks are written once, in place,
 * into `<id>.<mode>.part`, and each verified chunk's number is appended to `<id>.<mode>.have`, so an
 * interrupted pull (agent killed, seed gone) resumes with what it had. The complete file is renamed to the
 * cache entry `<id>.<mode>` that tasks' files are hard-linked to.
 *
 * @module
 */
import { chmod, open, readFile, rename, rm, stat, truncate } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { ContentCache } from "../agent/runner/mod.ts";
import { Bitmap } from "./bitmap.ts";
import { chunkCount } from "./manifest.ts";
import type { Content } from "./types.ts";

/** Mode of staged files in the cache: the source's, without write bits (they are hard-linked out). */
export function cachedMode(mode: number): number {
  return mode & 0o555;
}

/** A content being pulled or held. */
export class ContentFile {
  readonly content: Content;
  readonly chunkSize: number;
  /** The cache entry (complete file). */
  readonly path: string;
  readonly have: Bitmap;
  #fh: FileHandle | undefined;
  #log: FileHandle | undefined;
  #opening: Promise<void> | undefined;
  #finishing: Promise<void> | undefined;

  private constructor(content: Content, chunkSize: number, path: string, have: Bitmap) {
    this.content = content;
    this.chunkSize = chunkSize;
    this.path = path;
    this.have = have;
  }

  /** Opens the state of `content` in `cache`: complete, partial (resumed from `.have`), or new. */
  static async open(cache: ContentCache, content: Content, chunkSize: number): Promise<ContentFile> {
    const path = cache.entry(content.id, cachedMode(content.mode));
    const n = chunkCount(content);
    const done = await stat(path).then((s) => s.size === content.size, () => false);
    if (done) return new ContentFile(content, chunkSize, path, Bitmap.full(n));
    const have = new Bitmap(n);
    const log = await readFile(`${path}.have`).catch(() => undefined);
    const part = await stat(`${path}.part`).then((s) => s.size === content.size, () => false);
    if (log && part) {
      const view = new DataView(log.buffer, log.byteOffset, log.byteLength - (log.byteLength % 4));
      for (let off = 0; off < view.byteLength; off += 4) {
        const i = view.getUint32(off);
        if (i < n) have.set(i);
      }
    }
    return new ContentFile(content, chunkSize, path, have);
  }

  /** Bytes of the chunks held. */
  get bytesHeld(): number {
    if (this.have.full) return this.content.size;
    let n = 0;
    for (let i = 0; i < this.have.size; i++) if (this.have.has(i)) n += this.#length(i);
    return n;
  }

  #length(chunk: number): number {
    return Math.min(this.chunkSize, this.content.size - chunk * this.chunkSize);
  }

  /** Writes verified chunk `chunk` in place and records it; the last one completes the file. */
  async write(chunk: number, data: Uint8Array): Promise<void> {
    if (this.have.has(chunk)) return;
    this.#opening ??= (async () => {
      const part = `${this.path}.part`;
      const fresh = this.have.count === 0;
      this.#fh = await open(part, fresh ? "w" : "r+", 0o600);
      if (fresh) {
        await truncate(part, this.content.size);
        await rm(`${this.path}.have`, { force: true });
      }
      this.#log = await open(`${this.path}.have`, "a", 0o600);
    })();
    await this.#opening;
    if (this.have.has(chunk)) return;
    const fh = this.#fh!;
    let off = 0;
    while (off < data.byteLength) {
      const { bytesWritten } = await fh.write(data, off, data.byteLength - off, chunk * this.chunkSize + off);
      off += bytesWritten;
    }
    const rec = new Uint8Array(4);
    new DataView(rec.buffer).setUint32(0, chunk);
    await this.#log!.write(rec);
    this.have.set(chunk);
    if (this.have.full) await this.#finish();
  }

  #finish(): Promise<void> {
    this.#finishing ??= (async () => {
      await this.close();
      const part = `${this.path}.part`;
      await chmod(part, cachedMode(this.content.mode));
      await rename(part, this.path);
      await rm(`${this.path}.have`, { force: true });
    })();
    return this.#finishing;
  }

  /** An empty content has no chunks: it is complete once its (empty) file exists. */
  async ensureComplete(): Promise<void> {
    if (!this.have.full) return;
    if (this.#finishing) return await this.#finishing;
    const exists = await stat(this.path).then(() => true, () => false);
    if (exists) return;
    if (this.content.size !== 0) throw new Error(`Content ${this.content.id} is marked complete but missing`);
    await (await open(`${this.path}.part`, "w", 0o600)).close();
    await this.#finish();
  }

  /** Reads chunk `chunk` (which must be held). */
  async read(chunk: number): Promise<Uint8Array> {
    if (!this.have.has(chunk)) throw new RangeError(`Chunk ${chunk} of ${this.content.id} is not held here`);
    const length = this.#length(chunk);
    const buf = new Uint8Array(length);
    let fh: FileHandle;
    try {
      fh = await open(this.have.full ? this.path : `${this.path}.part`, "r");
    } catch {
      // Completed (renamed) between the check and the open.
      fh = await open(this.path, "r");
    }
    try {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, chunk * this.chunkSize + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === length ? buf : buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }

  /** Closes open files (a partial pull stays resumable). */
  async close(): Promise<void> {
    const fh = this.#fh;
    const log = this.#log;
    this.#fh = undefined;
    this.#log = undefined;
    this.#opening = undefined;
    // Closing after a failure or at the end: every written chunk was synced and recorded before.
    await fh?.close().catch(() => {});
    // Likewise for the chunk log.
    await log?.close().catch(() => {});
  }

  /** Removes the content from the cache, complete or partial. */
  async remove(): Promise<void> {
    await this.close();
    await Promise.all(
      [this.path, `${this.path}.part`, `${this.path}.have`].map((f) => rm(f, { force: true })),
    );
  }
}

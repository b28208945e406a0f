/**
 * Manifests: a file or directory tree cut into chunks, each named by its SHA-256, and the piece numbering
 * that peers use to ask for chunks. A content's ID is the SHA-256 of its chunk hashes, so verifying every
 * chunk verifies the whole file without reading it again.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { open, readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { StageInputError } from "./errors.ts";
import { CHUNK_SIZE, type Content, type Manifest, NAME_RE } from "./types.ts";

/** The SHA-256 of `bytes`, as 32 bytes. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/** Hex form of bytes. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** The ID of a content: SHA-256 over its chunk size, length and chunk hashes. */
export function contentId(chunkSize: number, size: number, chunks: Uint8Array): string {
  const head = new Uint8Array(12);
  const view = new DataView(head.buffer);
  view.setUint32(0, chunkSize);
  view.setBigUint64(4, BigInt(size));
  return createHash("sha256").update(head).update(chunks).digest("hex");
}

/** The ID of a manifest: what it names and holds, in a canonical form. */
export function manifestId(m: Manifest): string {
  const h = createHash("sha256");
  h.update(`${m.name}\n${m.kind}\n${m.chunkSize}\n`);
  for (const c of m.contents) h.update(`c ${c.id} ${c.size} ${c.mode.toString(8)}\n`);
  for (const f of m.files) h.update(`f ${f.content} ${f.path}\n`);
  for (const d of m.dirs) h.update(`d ${d}\n`);
  return h.digest("hex");
}

/** Number of chunks of a content. */
export function chunkCount(c: Pick<Content, "chunks">): number {
  return c.chunks.byteLength / 32;
}

/** Pieces number every chunk of every content of a manifest in order. */
export class PieceTable {
  /** First piece of each content, then the total. */
  readonly #starts: number[] = [0];
  readonly manifest: Manifest;

  constructor(manifest: Manifest) {
    this.manifest = manifest;
    for (const c of manifest.contents) this.#starts.push(this.#starts.at(-1)! + chunkCount(c));
  }

  /** Number of pieces. */
  get size(): number {
    return this.#starts.at(-1)!;
  }

  /** First piece of content `c`. */
  start(c: number): number {
    return this.#starts[c]!;
  }

  /** The content, chunk, byte offset, length and expected hash of piece `p`; `RangeError` past the end. */
  locate(p: number): { content: number; chunk: number; offset: number; length: number; hash: Uint8Array } {
    if (!Number.isInteger(p) || p < 0 || p >= this.size) {
      throw new RangeError(`Piece ${p} is not in manifest "${this.manifest.name}" (it has ${this.size})`);
    }
    let lo = 0;
    let hi = this.manifest.contents.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= p) lo = mid;
      else hi = mid - 1;
    }
    const c = this.manifest.contents[lo]!;
    const chunk = p - this.#starts[lo]!;
    const offset = chunk * this.manifest.chunkSize;
    return {
      content: lo,
      chunk,
      offset,
      length: Math.min(this.manifest.chunkSize, c.size - offset),
      hash: c.chunks.subarray(chunk * 32, chunk * 32 + 32),
    };
  }
}

/** A manifest made from local files, with where each content is read from. */
export interface LocalManifest {
  manifest: Manifest;
  id: string;
  /** Local file (or bytes in memory) of each content. */
  sources: (string | Uint8Array)[];
  bytes: number;
}

/** Chunks and hashes one file. */
async function hashFile(file: string, size: number, mode: number, chunkSize: number): Promise<Content> {
  const chunks = new Uint8Array(Math.ceil(size / chunkSize) * 32);
  const fh = await open(file, "r");
  try {
    const buf = new Uint8Array(chunkSize);
    for (let i = 0, off = 0; off < size; i++, off += chunkSize) {
      const want = Math.min(chunkSize, size - off);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, off + got);
        if (bytesRead === 0) throw new StageInputError(file, "it shrank while being read; stage it again");
        got += bytesRead;
      }
      chunks.set(sha256(buf.subarray(0, want)), i * 32);
    }
  } finally {
    await fh.close();
  }
  return { id: contentId(chunkSize, size, chunks), size, mode, chunks };
}

/**
 * Builds the manifest of `path` (a regular file or a directory) under `name` (default: its base name).
 *
 * @throws {StageInputError} for a missing path, a symbolic link or a special file inside it, or a bad name
 */
export async function buildManifest(
  path: string,
  options: { name?: string; chunkSize?: number } = {},
): Promise<LocalManifest> {
  const name = options.name ?? basename(path);
  if (!NAME_RE.test(name)) {
    throw new StageInputError(
      path,
      `the name "${name}" is not a plain file name (letters, digits, . _ - + @ ~ #; not starting with "."); give one with --name`,
    );
  }
  const chunkSize = options.chunkSize ?? CHUNK_SIZE;
  let top;
  try {
    top = await stat(path);
  } catch (cause) {
    throw new StageInputError(path, "it does not exist or cannot be read", { cause });
  }
  const contents: Content[] = [];
  const sources: string[] = [];
  const byKey = new Map<string, number>();
  const add = async (file: string, size: number, mode: number): Promise<number> => {
    const c = await hashFile(file, size, mode & 0o777, chunkSize);
    const key = `${c.id}.${c.mode}`;
    let i = byKey.get(key);
    if (i === undefined) {
      i = contents.push(c) - 1;
      sources.push(file);
      byKey.set(key, i);
    }
    return i;
  };
  const files: Manifest["files"] = [];
  const dirs: string[] = [];
  if (top.isFile()) {
    files.push({ path: ".", content: await add(path, top.size, top.mode) });
  } else if (top.isDirectory()) {
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name < b.name ? -1 : 1);
      for (const e of entries) {
        const full = join(dir, e.name);
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          dirs.push(r);
          await walk(full, r);
        } else if (e.isFile()) {
          const s = await stat(full);
          files.push({ path: r, content: await add(full, s.size, s.mode) });
        } else {
          throw new StageInputError(
            full,
            "it is a symbolic link or special file; staging copies regular files and directories only",
          );
        }
      }
    };
    await walk(path, "");
  } else {
    throw new StageInputError(path, "it is neither a regular file nor a directory");
  }
  const manifest: Manifest = { name, kind: top.isFile() ? "file" : "dir", chunkSize, contents, files, dirs };
  const bytes = contents.reduce((n, c) => n + c.size, 0);
  return { manifest, id: manifestId(manifest), sources, bytes };
}

/** The manifest of one file whose bytes are in memory (a lease's shipped executable). */
export function manifestOfBytes(
  name: string,
  bytes: Uint8Array,
  mode: number,
  chunkSize = CHUNK_SIZE,
): LocalManifest {
  const chunks = new Uint8Array(Math.ceil(bytes.byteLength / chunkSize) * 32);
  for (let i = 0, off = 0; off < bytes.byteLength; i++, off += chunkSize) {
    chunks.set(sha256(bytes.subarray(off, off + chunkSize)), i * 32);
  }
  const content: Content = {
    id: contentId(chunkSize, bytes.byteLength, chunks),
    size: bytes.byteLength,
    mode: mode & 0o777,
    chunks,
  };
  const manifest: Manifest = {
    name,
    kind: "file",
    chunkSize,
    contents: [content],
    files: [{ path: ".", content: 0 }],
    dirs: [],
  };
  return { manifest, id: manifestId(manifest), sources: [bytes], bytes: bytes.byteLength };
}

/** Throws `RangeError` unless every file refers to a content and chunk counts fit the sizes. */
export function checkManifest(m: Manifest): void {
  for (const c of m.contents) {
    if (chunkCount(c) !== Math.ceil(c.size / m.chunkSize)) {
      throw new RangeError(
        `Content ${c.id} of "${m.name}" has ${chunkCount(c)} chunk hashes for ${c.size} bytes`,
      );
    }
    if (contentId(m.chunkSize, c.size, c.chunks) !== c.id) {
      throw new RangeError(`Content ${c.id} of "${m.name}" does not match its chunk hashes`);
    }
  }
  for (const f of m.files) {
    if (f.content >= m.contents.length) {
      throw new RangeError(
        `File "${f.path}" of "${m.name}" refers to content ${f.content} of ${m.contents.length}`,
      );
    }
  }
  if (m.kind === "file" && (m.files.length !== 1 || m.files[0]!.path !== "." || m.dirs.length)) {
    throw new RangeError(`Manifest "${m.name}" of a single file must hold exactly one file "."`);
  }
  if (m.kind === "dir" && m.files.some((f) => f.path === ".")) {
    throw new RangeError(`Manifest "${m.name}" of a directory names a file "."`);
  }
}

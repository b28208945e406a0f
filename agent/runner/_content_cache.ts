/**
 * Large shipped files (a `reachable="false"` executable) are written once per agent and hard-linked into
 * each task's sandbox, instead of written again for every task: 250 tasks of a 10 MB executable were
 * 2.5 GB of disk writes. Keyed by content hash and file mode, so a link never changes another file's mode.
 * Falls back to a plain copy where a link cannot be made (another filesystem, no permission). Staged data
 * (`stage/`) lands in the same store, keyed by its chunk-list ID, and is linked out with `linkEntry`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { chmod, copyFile, link, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Contents from this size on are cached and linked. */
export const LINK_FROM = 64 * 1024;

/** One agent's store of shipped contents. */
export class ContentCache {
  readonly #dir: string;
  /** Content → its hash (a lease's tasks share one array). */
  readonly #hashes = new WeakMap<Uint8Array, string>();
  /** Cache file → its write, so tasks starting together write it once. */
  readonly #writes = new Map<string, Promise<string>>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The store's directory. */
  get dir(): string {
    return this.#dir;
  }

  /** The store's file for content `key` with `mode` (which may not exist yet). */
  entry(key: string, mode: number): string {
    return join(this.#dir, `${key}.${mode.toString(8)}`);
  }

  /** Puts the store's file `entry` at `file`: a hard link when it can, else a copy. */
  async linkEntry(entry: string, file: string): Promise<void> {
    await rm(file, { force: true });
    try {
      await link(entry, file);
    } catch {
      await copyFile(entry, file);
    }
  }

  /** Puts the file or directory tree `source` at `target`: each file a hard link when it can, else a copy. */
  async linkTree(source: string, target: string): Promise<void> {
    if (!(await stat(source)).isDirectory()) return await this.linkEntry(source, target);
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    for (const e of await readdir(source, { withFileTypes: true })) {
      const [from, to] = [join(source, e.name), join(target, e.name)];
      if (e.isDirectory()) await this.linkTree(from, to);
      else await this.linkEntry(from, to);
    }
  }

  /** Puts `content` at `file` with `mode`: a hard link to the cached copy when it can, else a copy. */
  async place(file: string, content: Uint8Array, mode: number): Promise<void> {
    // A restart finds its earlier link: replace it, never write through it (other tasks run that inode).
    await rm(file, { force: true });
    try {
      await link(await this.#cached(content, mode), file);
    } catch {
      // Not linkable here: write the file itself.
      await writeFile(file, content);
      await chmod(file, mode);
    }
  }

  #cached(content: Uint8Array, mode: number): Promise<string> {
    let hash = this.#hashes.get(content);
    if (hash === undefined) {
      hash = createHash("sha256").update(content).digest("hex");
      this.#hashes.set(content, hash);
    }
    const path = this.entry(hash, mode);
    let write = this.#writes.get(path);
    if (!write) {
      write = (async () => {
        await mkdir(this.#dir, { recursive: true });
        const tmp = `${path}.${process.pid}.tmp`;
        await writeFile(tmp, content);
        await chmod(tmp, mode);
        await rename(tmp, path);
        return path;
      })();
      write.catch(() => this.#writes.delete(path));
      this.#writes.set(path, write);
    }
    return write;
  }
}

/**
 * Staging on an agent: serves its chunks and have-maps to peers, pulls manifests when told to (streaming
 * progress back), keeps the staged names' index, links each complete name into `$SHOAL_STAGE/<name>`, and
 * evicts the least recently used names when the cache would pass its limit.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";
import { decode, encode, handleRequests, type MeshNode } from "../mesh/mod.ts";
// Directly, not through agent/mod.ts: the agent wires this service (a cycle otherwise).
import { ContentCache } from "../agent/runner/mod.ts";
import type { Logger } from "../agent/log.ts";
import { ContentFile } from "./content_file.ts";
import { StageCacheFullError, UnknownStageError } from "./errors.ts";
import { Holding } from "./holding.ts";
import { checkManifest, manifestId, PieceTable } from "./manifest.ts";
import { pull } from "./puller.ts";
import { chunkServer } from "./chunk_server.ts";
import {
  type Manifest,
  MANIFEST_PROTOCOL,
  ManifestRequestSchema,
  ManifestSchema,
  NAME_RE,
  PULL_PROTOCOL,
  type PullFrame,
  PullRequestSchema,
  type PullResult,
  STAGE_PROTOCOL,
  type Staged,
  StageRequestSchema,
  type StageResponse,
} from "./types.ts";

/** Default limit of the stage cache: 16 GiB. */
export const DEFAULT_CACHE_MAX = 16 * 1024 ** 3;
/** Largest manifest accepted (≈ 500 GB of 1 MiB chunks). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
const PROGRESS_MS = 250;

/** What {@linkcode startStageService} needs. */
export interface StageServiceInit {
  node: MeshNode;
  /** The agent's data dir: `cache/` (the content cache), `stage/` (`$SHOAL_STAGE`), `stage.json`. */
  workDir: string;
  host: string;
  log: Logger;
  /** Bytes the staged contents may take (default {@linkcode DEFAULT_CACHE_MAX}). */
  cacheMaxBytes?: number;
  /** The clock of staging and use times, which order evictions (default `Date.now`). */
  now?: () => number;
}

interface Entry {
  name: string;
  manifest: string;
  stagedAt: number;
  usedAt: number;
  complete: boolean;
}

interface Job {
  holding: Holding;
  done: Promise<PullResult>;
  abort: AbortController;
  /** Adds sources to the running pull. */
  addSources?: (sources: { peers: readonly string[]; seeds: readonly string[] }) => void;
}

/** The directory tasks find staged names in (`$SHOAL_STAGE`). */
export function stageDir(workDir: string): string {
  return join(workDir, "stage");
}

/** An agent's staging. */
export class StageService implements AsyncDisposable {
  readonly dir: string;
  readonly cacheMax: number;
  readonly #init: StageServiceInit;
  readonly #cache: ContentCache;
  readonly #index = new Map<string, Entry>();
  readonly #manifests = new Map<string, Manifest>();
  readonly #holdings = new Map<string, Promise<Holding>>();
  readonly #jobs = new Map<string, Job>();
  readonly #closing = new AbortController();
  /** Contents (`id.mode`) tasks link to, by task: never evicted while held. */
  readonly #holds = new Map<string, Set<string>>();
  /** Staged names tasks refer to (`$SHOAL_STAGE/<name>`), by task: never evicted while held. */
  readonly #nameHolds = new Map<string, Set<string>>();
  #saving: Promise<void> = Promise.resolve();

  constructor(init: StageServiceInit) {
    this.#init = init;
    this.dir = stageDir(init.workDir);
    this.cacheMax = init.cacheMaxBytes ?? DEFAULT_CACHE_MAX;
    this.#cache = new ContentCache(join(init.workDir, "cache"));
  }

  get #indexFile(): string {
    return join(this.#init.workDir, "stage.json");
  }

  #manifestFile(id: string): string {
    return join(this.#cache.dir, `${id}.manifest`);
  }

  /** Loads the index and serves the protocols. */
  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await mkdir(this.#cache.dir, { recursive: true });
    const text = await readFile(this.#indexFile, "utf8").catch(() => undefined);
    for (const e of text ? (JSON.parse(text) as { names?: Entry[] }).names ?? [] : []) {
      try {
        const m = decode(await readFile(this.#manifestFile(e.manifest)), ManifestSchema, {
          what: "staged manifest",
          maxBytes: MAX_MANIFEST_BYTES,
        });
        this.#manifests.set(e.manifest, m);
        this.#index.set(e.name, e);
      } catch (err) {
        this.#init.log.warn("dropped a staged name whose manifest is unreadable", { name: e.name, err });
      }
    }
    const { node } = this.#init;
    const chunks = await chunkServer(node);
    chunks.fallback = (id) => this.#holdingOf(id);
    await handleRequests(node, STAGE_PROTOCOL, {
      schema: StageRequestSchema,
      handler: async (req) => {
        if (req.op === "rm") {
          const removed = await this.remove(req.name);
          return { ...(await this.#answer()), removed };
        }
        return await this.#answer();
      },
    });
    await handleRequests(node, MANIFEST_PROTOCOL, {
      schema: ManifestRequestSchema,
      maxResponseBytes: MAX_MANIFEST_BYTES,
      handler: (req) => {
        const manifest = this.#manifests.get(req.manifest);
        if (!manifest) throw new UnknownStageError(req.manifest);
        return { manifest };
      },
    });
    await node.libp2p.handle(PULL_PROTOCOL, (stream) => this.#servePull(stream), {
      maxInboundStreams: 64,
    });
  }

  async #answer(): Promise<StageResponse> {
    return {
      agent: this.#init.node.peerId,
      host: this.#init.host,
      dir: this.dir,
      cacheBytes: this.cacheBytes(),
      cacheMax: this.cacheMax,
      staged: await this.list(),
    };
  }

  /** Bytes of the staged contents (partial ones counted whole: their files are allocated). */
  cacheBytes(except?: string, plus?: Manifest): number {
    const seen = new Map<string, number>();
    const add = (m: Manifest | undefined) => {
      for (const c of m?.contents ?? []) seen.set(`${c.id}.${c.mode}`, c.size);
    };
    for (const e of this.#index.values()) if (e.name !== except) add(this.#manifests.get(e.manifest));
    add(plus);
    let n = 0;
    for (const size of seen.values()) n += size;
    return n;
  }

  /** Every staged name here. */
  async list(): Promise<Staged[]> {
    const out: Staged[] = [];
    for (const e of [...this.#index.values()].sort((a, b) => a.name < b.name ? -1 : 1)) {
      const m = this.#manifests.get(e.manifest)!;
      const h = await this.#holdingOf(e.manifest);
      out.push({
        name: e.name,
        manifest: e.manifest,
        kind: m.kind,
        bytes: m.contents.reduce((n, c) => n + c.size, 0),
        files: m.files.length,
        pieces: h?.pieces ?? 0,
        of: h?.table.size ?? 0,
        complete: e.complete,
        stagedAt: e.stagedAt,
        usedAt: e.usedAt,
      });
    }
    return out;
  }

  /** The manifest ID of staged `name` here and whether it is complete, or undefined. */
  held(name: string): { manifest: string; complete: boolean } | undefined {
    const e = this.#index.get(name);
    return e && { manifest: e.manifest, complete: e.complete };
  }

  /** A manifest known here (staged, or being pulled), by ID. */
  manifestOf(id: string): Manifest | undefined {
    return this.#manifests.get(id);
  }

  /** The local path of a complete staged name (and marks it used), or undefined. */
  resolve(name: string): string | undefined {
    const e = this.#index.get(name);
    if (!e?.complete) return undefined;
    e.usedAt = (this.#init.now ?? Date.now)();
    this.#save();
    return join(this.dir, name);
  }

  #holdingOf(id: string): Promise<Holding | undefined> {
    const job = this.#jobs.get(id);
    if (job) return Promise.resolve(job.holding);
    const m = this.#manifests.get(id);
    if (!m) return Promise.resolve(undefined);
    return this.#holding(id, m);
  }

  #holding(id: string, m: Manifest): Promise<Holding> {
    let h = this.#holdings.get(id);
    if (!h) {
      h = (async () => {
        const files = await Promise.all(m.contents.map((c) => ContentFile.open(this.#cache, c, m.chunkSize)));
        return new Holding(id, new PieceTable(m), files);
      })();
      h.catch(() => this.#holdings.delete(id));
      this.#holdings.set(id, h);
    }
    return h;
  }

  /**
   * Pulls `manifest` from `peers` and `seeds` (joining a pull of it already running) and links it into
   * `$SHOAL_STAGE/<name>`.
   */
  async pull(
    manifest: Manifest,
    sources: { peers: readonly string[]; seeds: readonly string[] },
  ): Promise<{ job: Job; result: Promise<PullResult> }> {
    checkManifest(manifest);
    const id = manifestId(manifest);
    const running = this.#jobs.get(id);
    if (running) {
      // Its sources may be gone (an interrupted put): this request's sources join it.
      running.addSources?.(sources);
      return { job: running, result: running.done };
    }
    const started = Date.now();
    if (this.cacheBytes(manifest.name, manifest) > this.cacheMax) await this.#evictFor(manifest);
    await writeFile(this.#manifestFile(id), encode(manifest));
    this.#manifests.set(id, manifest);
    const old = this.#index.get(manifest.name);
    const entry: Entry = {
      name: manifest.name,
      manifest: id,
      stagedAt: (this.#init.now ?? Date.now)(),
      usedAt: (this.#init.now ?? Date.now)(),
      complete: false,
    };
    if (old?.manifest === id && old.complete) entry.complete = true;
    this.#index.set(manifest.name, entry);
    this.#save();
    const holding = await this.#holding(id, manifest);
    const abort = new AbortController();
    const signal = AbortSignal.any([abort.signal, this.#closing.signal]);
    const heldBefore = holding.bytesHeld;
    let addSources: Job["addSources"];
    const done = (async (): Promise<PullResult> => {
      try {
        const stats = await pull({
          node: this.#init.node,
          holding,
          peers: sources.peers,
          seeds: sources.seeds,
          signal,
          onSources: (add) => (addSources = add),
          onIssue: (what, peer, detail) =>
            what === "corrupt"
              ? this.#init.log.warn("corrupt chunk", { name: manifest.name, peer, detail })
              : this.#init.log.debug("chunk request failed", { name: manifest.name, peer, detail }),
        });
        const path = await this.#link(manifest);
        entry.complete = true;
        this.#save();
        if (old && old.manifest !== id) await this.#dropUnused(old.manifest);
        const bytes = manifest.contents.reduce((n, c) => n + c.size, 0);
        this.#init.log.info("staged", {
          name: manifest.name,
          bytes,
          fetched: stats.fetched,
          resumed: heldBefore,
          corrupt: stats.corrupt,
          ms: Date.now() - started,
        });
        return {
          name: manifest.name,
          manifest: id,
          bytes,
          fetched: stats.fetched,
          from: stats.from,
          corrupt: stats.corrupt,
          ms: Date.now() - started,
          path,
        };
      } finally {
        this.#jobs.delete(id);
        await holding.close();
      }
    })();
    const job: Job = { holding, done, abort, addSources: (s) => addSources?.(s) };
    this.#jobs.set(id, job);
    done.catch((err) => this.#init.log.warn("staging stopped", { name: manifest.name, reason: String(err) }));
    return { job, result: done };
  }

  /** Links a complete manifest's files into `$SHOAL_STAGE/<name>`, replacing what was there at once. */
  async #link(m: Manifest): Promise<string> {
    const target = join(this.dir, m.name);
    const tmp = join(this.dir, `.${m.name}.${crypto.randomUUID().slice(0, 8)}.tmp`);
    const paths = m.contents.map((c) => this.#entryOf(c));
    if (m.kind === "file") {
      await this.#cache.linkEntry(paths[m.files[0]!.content]!, tmp);
    } else {
      await mkdir(tmp, { recursive: true });
      for (const d of m.dirs) await mkdir(join(tmp, d), { recursive: true });
      for (const f of m.files) {
        const file = join(tmp, f.path);
        await mkdir(dirname(file), { recursive: true });
        await this.#cache.linkEntry(paths[f.content]!, file);
      }
    }
    const gone = join(this.dir, `.${m.name}.${crypto.randomUUID().slice(0, 8)}.old`);
    // No earlier copy to move aside (a first staging of the name).
    await rename(target, gone).catch(() => {});
    await rename(tmp, target);
    await rm(gone, { recursive: true, force: true });
    return target;
  }

  #entryOf(c: Manifest["contents"][number]): string {
    return this.#cache.entry(c.id, c.mode & 0o555);
  }

  /** Evicts least recently used complete names until `m` fits. */
  async #evictFor(m: Manifest): Promise<void> {
    const own = new Map(m.contents.map((c) => [`${c.id}.${c.mode}`, c.size]));
    const alone = [...own.values()].reduce((a, b) => a + b, 0);
    if (alone > this.cacheMax) throw new StageCacheFullError(m.name, alone, this.cacheMax);
    const victims = [...this.#index.values()]
      .filter((e) => e.name !== m.name && !this.#jobs.has(e.manifest) && !this.#held(e))
      .sort((a, b) => a.usedAt - b.usedAt);
    for (const v of victims) {
      if (this.cacheBytes(m.name, m) <= this.cacheMax) break;
      this.#init.log.info("evicting staged name (least recently used)", {
        name: v.name,
        limit: this.cacheMax,
      });
      await this.remove(v.name);
    }
    const needed = this.cacheBytes(m.name, m);
    if (needed > this.cacheMax) {
      throw new StageCacheFullError(m.name, m.contents.reduce((n, c) => n + c.size, 0), this.cacheMax);
    }
  }

  /** Removes a staged name: its link tree, and its contents unless another name holds them. */
  async remove(name: string): Promise<boolean> {
    if (!NAME_RE.test(name)) throw new UnknownStageError(name);
    const e = this.#index.get(name);
    if (!e) return false;
    const job = this.#jobs.get(e.manifest);
    if (job) {
      job.abort.abort(new Error(`"${name}" was removed`));
      // Aborted on purpose: its failure is the removal itself.
      await job.done.catch(() => {});
    }
    this.#index.delete(name);
    this.#save();
    await rm(join(this.dir, name), { recursive: true, force: true });
    await this.#dropUnused(e.manifest);
    return true;
  }

  /** Deletes a manifest's contents that no staged name refers to any more. */
  async #dropUnused(id: string): Promise<void> {
    if ([...this.#index.values()].some((e) => e.manifest === id)) return;
    const m = this.#manifests.get(id);
    if (!m) return;
    this.#manifests.delete(id);
    const h = await this.#holdings.get(id)?.catch(() => undefined);
    this.#holdings.delete(id);
    const inUse = new Set<string>();
    for (const e of this.#index.values()) {
      for (const c of this.#manifests.get(e.manifest)?.contents ?? []) inUse.add(`${c.id}.${c.mode}`);
    }
    for (const [i, c] of m.contents.entries()) {
      if (inUse.has(`${c.id}.${c.mode}`)) continue;
      if (h) await h.files[i]!.remove();
      else {
        const p = this.#entryOf(c);
        await Promise.all([p, `${p}.part`, `${p}.have`].map((f) => rm(f, { force: true })));
      }
    }
    await rm(this.#manifestFile(id), { force: true });
  }

  #save(): void {
    const names = [...this.#index.values()];
    this.#saving = this.#saving.then(async () => {
      const tmp = `${this.#indexFile}.tmp`;
      await writeFile(tmp, JSON.stringify({ names }, null, 1) + "\n");
      await rename(tmp, this.#indexFile);
    }).catch((err) => this.#init.log.warn("could not write the stage index", { err: String(err) }));
  }

  async #servePull(stream: Stream): Promise<void> {
    const { node } = this.#init;
    const lp = lpStream(stream, { maxDataLength: MAX_MANIFEST_BYTES });
    let req;
    try {
      req = decode((await lp.read({ signal: AbortSignal.timeout(30_000) })).subarray(), PullRequestSchema, {
        what: PULL_PROTOCOL,
        maxBytes: MAX_MANIFEST_BYTES,
      });
    } catch (err) {
      node.malformed(PULL_PROTOCOL, err);
      stream.abort(err as Error);
      return;
    }
    let open = true;
    const send = async (frame: PullFrame) => {
      if (!open) return;
      try {
        await lp.write(encode(frame), { signal: AbortSignal.timeout(10_000) });
      } catch {
        open = false; // the caller went away; the pull goes on
      }
    };
    let timer: ReturnType<typeof setInterval> | undefined;
    try {
      const { job, result } = await this.pull(req.manifest, { peers: req.peers, seeds: req.seeds });
      const progress = () =>
        send({
          type: "progress",
          pieces: job.holding.pieces,
          of: job.holding.table.size,
          bytes: job.holding.bytesHeld,
        });
      await progress();
      timer = setInterval(() => void progress(), PROGRESS_MS);
      const r = await result;
      clearInterval(timer);
      await send({ type: "done", result: r });
    } catch (err) {
      clearInterval(timer);
      const e = err instanceof Error ? err : new Error(String(err));
      await send({ type: "error", name: e.name, message: e.message });
    }
    // All was sent; a close that fails means the peer hung up first.
    if (open) await stream.close().catch(() => {});
  }

  /** The cache file of staged content `id` shipped with `mode`, when it is complete here. */
  contentPath(id: string, mode: number): string | undefined {
    const path = this.#cache.entry(id, mode & 0o555);
    return existsSync(path) ? path : undefined;
  }

  /** Keeps the names holding `refs` from eviction until `release(owner)`. */
  hold(owner: string, refs: { id: string; mode: number }[]): void {
    this.#holds.set(owner, new Set(refs.map((r) => `${r.id}.${r.mode & 0o777}`)));
  }

  /**
   * Marks the staged `names` a task refers to as used now and keeps them from eviction until
   * `release(owner)` (a running task may open its input late).
   */
  use(owner: string, names: readonly string[]): void {
    for (const n of names) this.resolve(n);
    this.#nameHolds.set(owner, new Set(names));
  }

  /** Ends a {@linkcode hold} and a {@linkcode use}. */
  release(owner: string): void {
    this.#holds.delete(owner);
    this.#nameHolds.delete(owner);
  }

  #held(e: Entry): boolean {
    for (const names of this.#nameHolds.values()) if (names.has(e.name)) return true;
    if (this.#holds.size === 0) return false;
    const keys = new Set([...this.#holds.values()].flatMap((s) => [...s]));
    return (this.#manifests.get(e.manifest)?.contents ?? []).some((c) => keys.has(`${c.id}.${c.mode}`));
  }

  /** Stops pulls (they stay resumable) and closes files. */
  async stop(): Promise<void> {
    this.#closing.abort(new Error("the agent is stopping"));
    await Promise.allSettled([...this.#jobs.values()].map((j) => j.done));
    await this.#saving;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Creates and starts an agent's staging. */
export async function startStageService(init: StageServiceInit): Promise<StageService> {
  const s = new StageService(init);
  await s.start();
  return s;
}

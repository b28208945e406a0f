/**
 * Staging from a tool (the CLI, a light peer): put a local file or tree on agents — the tool seeds, the
 * agents pull from each other — list what agents hold, remove a name.
 *
 * @module
 */
import { lpStream } from "@libp2p/utils";
import { decode, encode, type MeshNode, request } from "../mesh/mod.ts";
import { type LocalManifest, manifestId } from "./manifest.ts";
import { type SeedStats, serveSeed } from "./seed.ts";
import {
  type Manifest,
  MANIFEST_PROTOCOL,
  ManifestResponseSchema,
  PULL_PROTOCOL,
  type PullFrame,
  PullFrameSchema,
  type PullResult,
  STAGE_PROTOCOL,
  type StageResponse,
  StageResponseSchema,
  type StageSource,
} from "./types.ts";

/** Holders named in a {@linkcode StageSource}, at most (complete ones first). */
const MAX_HOLDERS = 64;

/** An agent to stage to. */
export interface StageTarget {
  id: string;
  host: string;
}

/** One agent's outcome of a put. */
export type AgentPut =
  | { agent: string; host: string; ok: true; result: PullResult }
  | { agent: string; host: string; ok: false; error: { name: string; message: string } };

/** Progress of a put across its agents. */
export interface PutProgress {
  /** Bytes held by all agents together, of `total` (the staged size × agents). */
  bytes: number;
  total: number;
  /** Agents done (complete or failed), of `agents`. */
  done: number;
  agents: number;
}

/** Options for {@linkcode stagePut}. */
export interface PutOptions {
  targets: readonly StageTarget[];
  /** Other agents that hold (some of) the manifest already: the targets pull from them too. */
  holders?: readonly string[];
  /**
   * One agent after the other, each from this node only: the way a lease ships bytes (no swarm); for
   * comparison.
   */
  oneAtATime?: boolean;
  /** Limit of what this seed sends, in bytes per second (default: none). */
  rateBytesPerSec?: number;
  onProgress?: (p: PutProgress) => void;
  signal?: AbortSignal;
}

/** Stages `local` on `targets`: this node seeds; each agent pulls from the others and, for the rest, from it. */
export async function stagePut(
  node: MeshNode,
  local: LocalManifest,
  options: PutOptions,
): Promise<{ agents: AgentPut[]; seed: SeedStats }> {
  await using seed = await serveSeed(node, local, {
    ...(options.rateBytesPerSec ? { rateBytesPerSec: options.rateBytesPerSec } : {}),
  });
  const peers = [...new Set([...options.targets.map((t) => t.id), ...options.holders ?? []])];
  const held = new Map<string, number>();
  let done = 0;
  const report = () =>
    options.onProgress?.({
      bytes: [...held.values()].reduce((a, b) => a + b, 0),
      total: local.bytes * options.targets.length,
      done,
      agents: options.targets.length,
    });
  const one = async (t: StageTarget): Promise<AgentPut> => {
    const fail = (name: string, message: string): AgentPut => ({
      agent: t.id,
      host: t.host,
      ok: false,
      error: { name, message },
    });
    try {
      const stream = await node.openStream(t.id, PULL_PROTOCOL, {
        signal: options.signal ?? AbortSignal.timeout(10_000),
      });
      const onAbort = () => stream.abort(new Error("interrupted"));
      options.signal?.addEventListener("abort", onAbort);
      try {
        const lp = lpStream(stream, { maxDataLength: 64 * 1024 * 1024 });
        await lp.write(
          encode({ manifest: local.manifest, peers: options.oneAtATime ? [] : peers, seeds: [node.peerId] }),
        );
        while (true) {
          const frame: PullFrame = decode((await lp.read()).subarray(), PullFrameSchema, {
            what: PULL_PROTOCOL,
          });
          if (frame.type === "progress") {
            held.set(t.id, frame.bytes);
            report();
          } else if (frame.type === "done") {
            held.set(t.id, frame.result.bytes);
            return { agent: t.id, host: t.host, ok: true, result: frame.result };
          } else return fail(frame.name, frame.message);
        }
      } finally {
        options.signal?.removeEventListener("abort", onAbort);
        // The transfer's outcome is decided above; a failed close changes nothing.
        await stream.close().catch(() => {});
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      return fail(e.name, e.message);
    } finally {
      done++;
      report();
    }
  };
  const agents: AgentPut[] = [];
  if (options.oneAtATime) { for (const t of options.targets) agents.push(await one(t)); }
  else agents.push(...await Promise.all(options.targets.map(one)));
  return { agents, seed: { ...seed.stats } };
}

/** The agents among `agents` that hold pieces of manifest `id` (complete or partial), asked once each. */
export async function findHolders(
  node: MeshNode,
  agents: readonly StageTarget[],
  id: string,
  options: { signal?: AbortSignal } = {},
): Promise<string[]> {
  const { answers } = await stageList(node, agents, options);
  return answers.filter((a) => a.staged.some((s) => s.manifest === id && s.pieces > 0)).map((a) => a.agent);
}

/** Asks each agent for its staged names (`rm` first when `remove` names one). */
export async function stageList(
  node: MeshNode,
  targets: readonly StageTarget[],
  options: { remove?: string; signal?: AbortSignal } = {},
): Promise<{ answers: StageResponse[]; silent: { id: string; host: string; reason: string }[] }> {
  const body = options.remove !== undefined ? { op: "rm", name: options.remove } : { op: "ls" };
  const settled = await Promise.allSettled(targets.map((t) =>
    request(node, t.id, STAGE_PROTOCOL, body, {
      schema: StageResponseSchema,
      timeoutMs: 15_000,
      ...(options.signal ? { signal: options.signal } : {}),
    })
  ));
  const answers: StageResponse[] = [];
  const silent: { id: string; host: string; reason: string }[] = [];
  settled.forEach((s, i) => {
    if (s.status === "fulfilled") answers.push(s.value);
    else {silent.push({
        id: targets[i]!.id,
        host: targets[i]!.host,
        reason: String(s.reason?.message ?? s.reason),
      });}
  });
  return { answers, silent };
}

/** What {@linkcode locateStaged} found. */
export interface StagedLocations {
  /** Per name held complete somewhere: the version to use and who holds it. */
  sources: Map<string, StageSource>;
  /** Names no answering agent holds complete. */
  unheld: string[];
  /** Agents that did not answer. */
  silent: { id: string; host: string; reason: string }[];
}

/**
 * Where staged `names` can be pulled from among `targets`, asked once each as `shoal stage ls` does: for
 * each name its most recently staged complete version, and the agents that hold pieces of that version.
 */
export async function locateStaged(
  node: MeshNode,
  targets: readonly StageTarget[],
  names: Iterable<string>,
  options: { signal?: AbortSignal } = {},
): Promise<StagedLocations> {
  const { answers, silent } = await stageList(node, targets, options);
  const out: StagedLocations = { sources: new Map(), unheld: [], silent };
  for (const name of new Set(names)) {
    const held = answers.flatMap((a) =>
      a.staged.filter((s) => s.name === name && s.pieces > 0).map((s) => ({ agent: a.agent, s }))
    );
    const newest = held.filter((h) => h.s.complete).sort((x, y) => y.s.stagedAt - x.s.stagedAt)[0];
    if (!newest) {
      out.unheld.push(name);
      continue;
    }
    const holders = held.filter((h) => h.s.manifest === newest.s.manifest)
      .sort((x, y) => Number(y.s.complete) - Number(x.s.complete))
      .slice(0, MAX_HOLDERS).map((h) => h.agent);
    out.sources.set(name, { name, manifest: newest.s.manifest, holders });
  }
  return out;
}

/** The manifest `id` from the first of `peers` that holds it, checked against its ID. */
export async function fetchManifest(
  node: MeshNode,
  peers: readonly string[],
  id: string,
  options: { signal?: AbortSignal } = {},
): Promise<Manifest> {
  const why: string[] = [];
  for (const peer of peers.filter((p) => p !== node.peerId)) {
    try {
      const { manifest } = await request(node, peer, MANIFEST_PROTOCOL, { manifest: id }, {
        schema: ManifestResponseSchema,
        maxBytes: 64 * 1024 * 1024,
        timeoutMs: 15_000,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (manifestId(manifest) === id) return manifest;
      why.push(`${peer}: sent a manifest that does not match its ID`);
    } catch (err) {
      options.signal?.throwIfAborted();
      why.push(`${peer}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`No peer gave manifest ${id.slice(0, 16)}: ${why.join("; ") || "no peers to ask"}`);
}

/**
 * Staging from a tool (the CLI, a light peer): put a local file or tree on agents — the tool seeds, the
 * agents pull from each other — list what agents hold, remove a name.
 *
 * @module
 */
import { lpStream } from "@libp2p/utils";
import { decode, encode, type MeshNode, request } from "../mesh/mod.ts";
import type { LocalManifest } from "./manifest.ts";
import { type SeedStats, serveSeed } from "./seed.ts";
import {
  PULL_PROTOCOL,
  type PullFrame,
  PullFrameSchema,
  type PullResult,
  STAGE_PROTOCOL,
  type StageResponse,
  StageResponseSchema,
} from "./types.ts";

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

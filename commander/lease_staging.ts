/**
 * Large shipped files (a `reachable="false"` executable, a big asset) reach agents by staging, as
 * `shoal stage put` does: before its leases go out, the commander seeds each distinct content and the
 * agents that get tasks using it pull its chunks from each other, verified, into their content caches;
 * the leases then carry only a reference (`lease_blobs.ts`). A lease to the commander's own agent keeps
 * its bytes inline: they never leave the process.
 *
 * @module
 */
import type { MeshNode } from "../mesh/mod.ts";
// Directly, not through stage/mod.ts: that exports the agent-side service too, which imports this area.
import { locateStaged, stagePut, type StageTarget } from "../stage/client.ts";
import { UnheldStageError } from "../stage/errors.ts";
import { manifestId, manifestOfBytes } from "../stage/manifest.ts";
import type { StageSource } from "../stage/types.ts";
import { CommanderError } from "./errors.ts";
import type { StagedRef } from "../agent/wire/mod.ts";
import { declaredNames } from "./task_specs.ts";
import type { TaskSpec } from "../agent/wire/mod.ts";

/** Binary contents from this size on are staged instead of carried in the lease. */
export const STAGE_FROM = 64 * 1024;

/** What {@linkcode stageLeaseFiles} did. */
export interface LeaseStaging {
  /** Per agent, the contents now staged there. */
  staged: Map<string, Map<Uint8Array, StagedRef>>;
  /** Agents that could not get a content, with why. */
  failed: Map<string, string>;
}

/** Stages the large binary files of `byAgent`'s specs on the agents that need them (not on `node` itself). */
export async function stageLeaseFiles(
  node: MeshNode,
  byAgent: ReadonlyMap<string, readonly TaskSpec[]>,
  options: { signal?: AbortSignal } = {},
): Promise<LeaseStaging> {
  const wanted = new Map<Uint8Array, { mode: number; agents: Set<string> }>();
  for (const [agent, specs] of byAgent) {
    if (agent === node.peerId) continue;
    for (const f of specs.flatMap((s) => s.files ?? [])) {
      if (typeof f.content === "string" || f.content.byteLength < STAGE_FROM) continue;
      const w = wanted.get(f.content) ?? { mode: f.mode ?? 0o644, agents: new Set() };
      w.agents.add(agent);
      wanted.set(f.content, w);
    }
  }
  const result: LeaseStaging = { staged: new Map(), failed: new Map() };
  await Promise.all([...wanted].map(async ([bytes, { mode, agents }]) => {
    const unnamed = manifestOfBytes("shipped", bytes, mode);
    const content = unnamed.manifest.contents[0]!;
    // Named by content, so that tasks of any topology shipping the same file share it.
    const manifest = { ...unnamed.manifest, name: `shipped-${content.id.slice(0, 16)}` };
    const local = { ...unnamed, manifest, id: manifestId(manifest) };
    const { agents: outcome } = await stagePut(node, local, {
      targets: [...agents].map((id) => ({ id, host: id })),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (const o of outcome) {
      if (!o.ok) {
        result.failed.set(o.agent, `staging a ${bytes.byteLength}-byte file failed: ${o.error.message}`);
        continue;
      }
      const mine = result.staged.get(o.agent) ?? new Map<Uint8Array, StagedRef>();
      mine.set(bytes, { id: content.id, size: content.size });
      result.staged.set(o.agent, mine);
    }
  }));
  return result;
}

/**
 * Where the staged names `specs` declare can be pulled from, asked of `agents()` (the alive ones) only
 * when some task declares one. Throws {@linkcode CommanderError} naming every name that no agent holds
 * complete, before anything is leased.
 */
export async function locateDeclared(
  node: MeshNode,
  agents: () => Promise<readonly StageTarget[]>,
  specs: Iterable<TaskSpec>,
  options: { signal?: AbortSignal } = {},
): Promise<Map<string, StageSource>> {
  const names = new Set<string>();
  for (const spec of specs) for (const n of declaredNames(spec)) names.add(n);
  if (names.size === 0) return new Map();
  const found = await locateStaged(node, await agents(), names, options);
  if (found.unheld.length > 0) {
    const errors = found.unheld.map((n) => new UnheldStageError(n));
    const silent = found.silent.length ? ` (${found.silent.length} agent(s) did not answer)` : "";
    throw new CommanderError(errors.map((e) => e.message).join("; ") + silent, [], { cause: errors[0] });
  }
  return found.sources;
}

/** The sources of the staged names `specs` declare (for one agent's lease), or undefined when none. */
export function sourcesFor(
  specs: readonly TaskSpec[],
  sources: ReadonlyMap<string, StageSource>,
): StageSource[] | undefined {
  const names = new Set(specs.flatMap((s) => declaredNames(s)));
  const out = [...names].flatMap((n) => sources.get(n) ?? []);
  return out.length ? out : undefined;
}

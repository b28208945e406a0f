/**
 * `shoal kv get|watch` as a tool, outside a task: every writer's values of a topology, read through any
 * agent of the session.
 *
 * @module
 */
import { KV_TOPIC, KvBatchSchema, type KvEntry, listEntries, toValue } from "../agent/mod.ts";
import { activeRecord } from "../commander/mod.ts";
import type { KvResult } from "../client/mod.ts";
import { connectCommander } from "./commander.ts";
import { DeadlineError } from "./errors.ts";
import { openSession } from "./session.ts";

/** A tool's result for one key: every scope's values, scope named. */
function toolResult(key: string, entries: KvEntry[]): KvResult {
  return {
    key,
    values: entries.filter((e) => e.key === key && !e.deleted).sort((a, b) => a.path < b.path ? -1 : 1)
      .map((e) => toValue(e, { withScope: true })),
  };
}

/** `shoal kv get KEY` as a tool: waits (until `timeout` ms) for `want` values. */
export async function toolGet(
  key: string,
  want: number,
  opts: { session: string; id?: string; timeout?: number },
): Promise<KvResult> {
  await using c = await connectCommander(await openSession(opts.session));
  const topologyId = (await activeRecord(c.init, opts.id)).id;
  const deadline = Date.now() + (opts.timeout ?? 3_600_000);
  while (true) {
    const r = toolResult(key, await listEntries(c.peer.node, c.peer.agent, { topologyId, key }));
    if (r.values.length >= want) return r;
    if (Date.now() >= deadline) {
      throw new DeadlineError(
        `Timed out waiting for ${want} value(s) of "${key}" (have ${r.values.length})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** `shoal kv watch [PREFIX]` as a tool: `print` gets each update until it returns true or `signal` aborts. */
export async function toolWatch(
  prefix: string,
  print: (r: KvResult) => boolean,
  opts: { session: string; signal: AbortSignal; exact?: boolean; from?: string; id?: string },
): Promise<void> {
  await using c = await connectCommander(await openSession(opts.session));
  const topologyId = (await activeRecord(c.init, opts.id)).id;
  let from = opts.from ?? null;
  const last = new Map<string, string>();
  let first = true;
  // Re-read as soon as a gossiped batch touches this topology; every 2 s in case gossip was missed.
  let wake: (() => void) | undefined;
  c.peer.node.subscribe(KV_TOPIC, KvBatchSchema, (batch) => {
    if (batch.entries.some((e) => e.topologyId === topologyId)) wake?.();
  });
  outer: while (!opts.signal.aborted) {
    const entries = await listEntries(c.peer.node, c.peer.agent, { topologyId, prefix });
    const fresh = entries.filter((e) => {
      if (opts.exact && e.key !== prefix) return false;
      const id = `${e.key}\0${e.scope}\0${e.sender}`;
      const had = last.get(id);
      last.set(id, e.version);
      if (first) return from !== null && e.version > from;
      return had === undefined || e.version > had;
    }).sort((a, b) => a.version < b.version ? -1 : 1);
    first = false;
    from = null;
    for (const e of fresh) {
      if (print({ key: e.key, values: [toValue(e, { withScope: true })] })) break outer;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2_000);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
      opts.signal.addEventListener("abort", wake, { once: true });
    });
    wake = undefined;
  }
}

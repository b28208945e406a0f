/**
 * A transition sent to an environment's `direct` tasks: a custom command carrying it (see
 * `agent/_task_transitions.ts`), sent for the controller by the agent it asks, whose tasks' answers come
 * back one by one as they arrive ({@linkcode ENV_TRANSITION_PROTOCOL}), so progress moves per answer.
 *
 * @module
 */
import { lpStream } from "@libp2p/utils";
import { CMD_PROTOCOL, CmdResponseSchema, TRANSITION_MARKER } from "../agent/mod.ts";
import { type CommanderInit } from "../commander/mod.ts";
import { decode, encode, request } from "../mesh/mod.ts";
import { ENV_TRANSITION_PROTOCOL, EnvTransitionFrameSchema } from "./protocols.ts";
import type { EnvEvent, EnvRecord } from "./types.ts";

/** One task's answer to a transition. */
export interface TaskAnswer {
  path: string;
  ok: boolean;
  error?: string;
  /** From the transition's sending to the task's answer. */
  ms?: number;
}

/**
 * Sends a transition to `paths` and gathers their answers within `timeoutMs`; `onAnswer` is told how many
 * answered so far, as they come (the `via` agent streams them back).
 */
export async function sendTransition(
  init: CommanderInit,
  rec: EnvRecord,
  t: { event: EnvEvent; to: EnvRecord["state"]; args: Record<string, string>; runNumber: number | null },
  paths: string[],
  timeoutMs: number,
  onAnswer?: (answered: number, total: number) => void,
): Promise<TaskAnswer[]> {
  if (paths.length === 0) return [];
  const body = JSON.stringify({
    envId: rec.id,
    event: t.event,
    from: rec.state,
    to: t.to,
    args: t.args,
    runNumber: t.runNumber,
    paths,
  });
  const payload = new TextEncoder().encode(TRANSITION_MARKER + body);
  const sentAt = Date.now();
  const replies = await streamTransition(init, rec.topologyId, payload, paths.length, timeoutMs, onAnswer);
  const answered = new Map<string, TaskAnswer>();
  for (const r of replies) {
    let a: { ok?: boolean; error?: string; at?: number } = {};
    try {
      a = JSON.parse(new TextDecoder().decode(r.payload));
    } catch { /* not an answer */ }
    answered.set(r.path, {
      path: r.path,
      ok: a.ok === true,
      ...(a.ok === true ? {} : { error: a.error ?? "answered with something else than ok" }),
      ...(typeof a.at === "number" ? { ms: a.at - sentAt } : {}),
    });
  }
  return paths.map((p) =>
    answered.get(p) ?? { path: p, ok: false, error: `no answer to ${t.event} within ${timeoutMs / 1000} s` }
  );
}

/**
 * The transition's replies, streamed by the `via` agent as they come ({@linkcode ENV_TRANSITION_PROTOCOL});
 * asked in one piece over the custom commands' protocol when that agent is this peer.
 */
async function streamTransition(
  init: CommanderInit,
  topologyId: string,
  payload: Uint8Array,
  want: number,
  timeoutMs: number,
  onAnswer?: (answered: number, total: number) => void,
): Promise<{ path: string; payload: Uint8Array }[]> {
  const signal = AbortSignal.any([
    AbortSignal.timeout(timeoutMs + 15_000),
    ...(init.signal ? [init.signal] : []),
  ]);
  if (init.via === init.node.peerId) {
    const res = await request(init.node, init.via, CMD_PROTOCOL, {
      topologyId,
      condition: "",
      payload,
      waitReplies: want,
      timeoutMs,
    }, { schema: CmdResponseSchema, maxBytes: 64 * 1024 * 1024, timeoutMs: timeoutMs + 15_000, signal });
    onAnswer?.(res.replies.length, want);
    return res.replies.map((r) => ({ path: r.sender.path, payload: r.payload }));
  }
  const stream = await init.node.openStream(init.via, ENV_TRANSITION_PROTOCOL, { signal });
  const replies: { path: string; payload: Uint8Array }[] = [];
  try {
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 * 1024 });
    await lp.write(encode({ topologyId, payload, waitReplies: want, timeoutMs }), { signal });
    while (true) {
      const frame = decode((await lp.read({ signal })).subarray(), EnvTransitionFrameSchema, {
        what: ENV_TRANSITION_PROTOCOL,
        maxBytes: 64 * 1024 * 1024,
      });
      if ("done" in frame) break;
      replies.push(...frame.answers);
      onAnswer?.(replies.length, want);
    }
    // Every answer is in: a close that fails (the peer hung up first) loses nothing.
    await stream.close({ signal }).catch(() => {});
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
  return replies;
}

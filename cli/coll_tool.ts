/**
 * `shoal coll …` as a tool, outside a task: its part of a collective goes through any agent of the session,
 * which forwards it to the collective's root.
 *
 * @module
 */
import { activeRecord } from "../commander/mod.ts";
import type { CollResult } from "../client/mod.ts";
import { COLL_PROTOCOL, type CollOp, CollResponseSchema } from "../coll/mod.ts";
import { RemoteError, request } from "../mesh/mod.ts";
import { connectCommander } from "./commander.ts";
import { CliError, DeadlineError, ExitCode } from "./errors.ts";
import { openSession } from "./session.ts";

/** Options of the `shoal coll` commands. */
export interface CollCliOptions {
  id?: string;
  generation?: number;
  group?: string;
  timeout?: number;
  fanout?: number;
  root?: string;
  op?: string;
  json?: boolean;
}

/** What a tool sends for its place in a collective (outside a task). */
export interface ToolCall {
  op: CollOp;
  data?: Uint8Array;
  parts?: string[];
  reduce?: string;
}

const TOOL_WAIT_MS = 100_000;

/** A tool's part: through any agent of the session, which forwards it to the collective's root. */
export async function collAsTool(
  name: string,
  call: ToolCall | "observe",
  opts: CollCliOptions,
  session: string,
): Promise<CollResult> {
  await using c = await connectCommander(await openSession(session));
  const topologyId = (await activeRecord(c.init, opts.id)).id;
  const body = call === "observe"
    ? {
      type: "observe",
      topologyId,
      name,
      group: opts.group ?? "all",
      gen: opts.generation ?? 0,
      atRoot: false,
    }
    : {
      type: "tool",
      topologyId,
      gen: opts.generation ?? 0,
      by: `tool:${c.peer.node.peerId}`,
      call: {
        op: call.op,
        name,
        ...(opts.group ? { group: opts.group } : {}),
        ...(call.reduce ? { reduce: call.reduce } : {}),
        ...(opts.root ? { root: opts.root } : {}),
        ...(opts.fanout ? { fanout: opts.fanout } : {}),
      },
      timeoutMs: opts.timeout ?? 0,
      ...(call.data ? { data: call.data } : {}),
      ...(call.parts ? { parts: call.parts.map((p) => new TextEncoder().encode(p)) } : {}),
    };
  let r;
  try {
    r = await request(c.peer.node, c.init.via, COLL_PROTOCOL, body, {
      schema: CollResponseSchema,
      timeoutMs: (opts.timeout || TOOL_WAIT_MS) + 20_000,
      maxBytes: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as Error;
    const n = err instanceof RemoteError ? err.remoteName : e.name;
    if (n === "CollectiveFailedError" && /failed: timed out/.test(e.message)) {
      throw new DeadlineError(e.message);
    }
    if (n === "TimeoutError") throw new DeadlineError(e.message);
    if (n === "CollectiveGroupError" || n === "CollectiveMismatchError" || n === "RangeError") {
      throw new CliError(e.message, ExitCode.usage);
    }
    throw new CliError(e.message, ExitCode.failure, { cause: err });
  }
  const res = r.result;
  if (!res) throw new CliError(`No result for "${name}"`, ExitCode.failure);
  const text = (d: Uint8Array) => {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(d);
    } catch {
      return undefined;
    }
  };
  const t = res.data ? text(res.data) : undefined;
  return {
    name: res.name,
    generation: res.generation,
    op: res.op,
    size: res.size,
    ...(res.data ? { data: res.data } : {}),
    ...(t !== undefined ? { text: t } : {}),
    ...(res.values
      ? {
        values: res.values.map((v) => {
          const vt = text(v.data);
          return { path: v.path, data: v.data, ...(vt !== undefined ? { text: vt } : {}) };
        }),
      }
      : {}),
  };
}

/**
 * The typed client of shoal's task API, for TypeScript tasks: key-value properties and custom commands
 * through the local agent (Unix socket in `SHOAL_SOCKET`, token in `SHOAL_TASK_TOKEN`).
 *
 * @example
 * ```ts
 * import { connectTask } from "shoal/mod.ts";
 * const task = connectTask();
 * await task.kv.put("TaskIndexProperty", process.env.DDS_TASK_INDEX ?? "0");
 * const all = await task.kv.get("TaskIndexProperty", { waitCount: 5, timeoutMs: 30_000 });
 * for await (const cmd of task.cmd.listen({ signal: AbortSignal.timeout(10_000) })) {
 *   if (cmd.type === "cmd") await task.cmd.reply(cmd.id, `got ${cmd.text}`);
 * }
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { call, callJson, type Endpoint, ndjson } from "./_http.ts";
import { errorFor, TaskApiError } from "./errors.ts";
import { coalesced } from "./_batch.ts";
import { type CollClient, collClient } from "./coll.ts";

export type { CollClient, CollOptions, CollResult, CollValue, Reduction, RootedOptions } from "./coll.ts";
export {
  AccessDeniedError,
  CollectiveFailedError,
  TaskApiError,
  UnauthorizedError,
  ValueTooLargeError,
  WaitTimeoutError,
} from "./errors.ts";

/** One writer's value of a property. */
export interface KvValue {
  value: string;
  /** Writer's DDS task ID. */
  sender: string;
  /** Writer's runtime path. */
  path: string;
  /** Hybrid-logical-clock version; later strings are later versions. */
  version: string;
  /** Set on a watched delete. */
  deleted?: boolean;
}

/** A property's values: every writer's current one (`get`), or the one that changed (`watch`). */
export interface KvResult {
  key: string;
  values: KvValue[];
}

/** A custom command received. */
export interface ReceivedCommand {
  type: "cmd";
  id: string;
  /** Sender's task ID (`tool:<peer>` for tools). */
  sender: string;
  /** Sender's runtime path (empty for tools). */
  path: string;
  condition: string;
  payload: Uint8Array;
  /** The payload as text, when it is UTF-8. */
  text?: string;
}

/** Another task of the topology ended for good. */
export interface TaskDone {
  type: "task:done";
  topologyId: string;
  path: string;
  id: string;
  code: number | null;
  signal: string | null;
}

/** A reply to a command sent. */
export interface CommandReply {
  /** The replying task's ID, `tool:<peer>` or `agent:<peer>`. */
  sender: string;
  /** The replying task's path (empty for tools and agents). */
  path: string;
  /** The replying agent's host name (agents only). */
  host?: string;
  payload: Uint8Array;
  text?: string;
}

/** Who this task is, as its agent knows it. */
export interface TaskSelf {
  topologyId: string;
  path: string;
  id: string;
  collectionPath: string | null;
  properties: { name: string; access: "read" | "write" | "readwrite"; scope: "global" | "collection" }[];
}

/** An environment transition for this task (`direct` mode); answer with `ok()` or `error()`. */
export interface Transition {
  id: string;
  envId: string;
  /** AliECS event: CONFIGURE, START_ACTIVITY, … */
  event: string;
  from: string;
  to: string;
  args: Record<string, string>;
  /** Set from START_ACTIVITY on. */
  runNumber: number | null;
  ok(options?: Signalled): Promise<void>;
  error(message: string, options?: Signalled): Promise<void>;
}

interface Signalled {
  signal?: AbortSignal;
}

/** The API of a task. */
export interface TaskClient {
  self(options?: Signalled): Promise<TaskSelf>;
  kv: {
    /** Writes this task's value of `key`; resolves with its version. */
    put(key: string, value: string, options?: Signalled): Promise<{ key: string; version: string }>;
    /** Every writer's current value; `waitCount` blocks until that many writers have one. */
    get(key: string, options?: Signalled & { waitCount?: number; timeoutMs?: number }): Promise<KvResult>;
    /** Deletes this task's value (a tombstone). */
    delete(key: string, options?: Signalled): Promise<{ key: string; version: string }>;
    /** Updates of `key` (or of every readable key starting with `prefix`), from `from` when given. */
    watch(options?: Signalled & { key?: string; prefix?: string; from?: string }): AsyncIterable<KvResult>;
  };
  /** Environment transitions for this task, as they arrive (see README "Environments"). */
  transitions(options?: Signalled & { max?: number }): AsyncIterable<Transition>;
  /** Answers a transition by its ID (ok, or failed with `error`); `transitions()` items do it with `ok()`. */
  answer(id: string, result: { error?: string }, options?: Signalled): Promise<void>;
  /** Sends this task's environment to ERROR (AliECS GO_ERROR) with `message` as the reason. */
  goError(message: string, options?: Signalled): Promise<void>;
  /** Collectives with the topology's other tasks (see README "Collectives"). */
  coll: CollClient;
  cmd: {
    /**
     * Sends a command to the tasks `condition` selects (DDS: empty = all others, task ID, path, regex), to
     * tools (`tool`) or to agents (`agent`, `agent:<peer ID or host>`: built-in `ping`, `status`,
     * `getlog N`); gathers `waitReplies` replies.
     */
    send(
      payload: string | Uint8Array,
      options?: Signalled & { condition?: string; waitReplies?: number; timeoutMs?: number },
    ): Promise<{ id: string; timedOut: boolean; replies: CommandReply[] }>;
    /** Commands for this task (and, with `events`, task-done events), as they arrive. */
    listen(
      options?: Signalled & { events?: boolean; max?: number },
    ): AsyncIterable<ReceivedCommand | TaskDone>;
    /** Replies to a command received. */
    reply(id: string, payload: string | Uint8Array, options?: Signalled): Promise<void>;
  };
}

function fromBase64(data: string): Uint8Array {
  const bin = atob(data);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

const enc = encodeURIComponent;
const bytes = (p: string | Uint8Array) => (typeof p === "string" ? new TextEncoder().encode(p) : p);

type ReplyResult = { ok: true } | { error: { status: number; name: string; message: string } };

/**
 * Connects to the local agent's task API (from `SHOAL_SOCKET` and `SHOAL_TASK_TOKEN` unless given).
 *
 * @throws {TaskApiError} when there is no socket or token: the process is not a shoal task
 */
export function connectTask(options: { socket?: string; token?: string } = {}): TaskClient {
  const socket = options.socket ?? process.env.SHOAL_SOCKET;
  const token = options.token ?? process.env.SHOAL_TASK_TOKEN;
  if (!socket || !token) {
    throw new TaskApiError(
      0,
      "SHOAL_SOCKET and SHOAL_TASK_TOKEN are not set: this is not a shoal task (tools use --session and --id)",
    );
  }
  const ep: Endpoint = { socket, token };
  const sig = (o?: Signalled) => (o?.signal ? { signal: o.signal } : {});
  // Replies made while one request is in flight go out together in the next (`POST /v1/cmd/replies`).
  const reply = coalesced<{ id: string; payload: Uint8Array }, void>(async (replies) => {
    const body = JSON.stringify({
      replies: replies.map((r) => ({ id: r.id, data: Buffer.from(r.payload).toString("base64") })),
    });
    const { results } = await callJson<{ results: ReplyResult[] }>(ep, "POST", "/v1/cmd/replies", { body });
    return results.map((r) =>
      "error" in r
        ? { ok: false, error: errorFor(r.error.status, r.error.name, r.error.message) }
        : { ok: true, value: undefined }
    );
  }, (r) => r.payload.byteLength * 4 / 3 + 128);
  return {
    self: (o) => callJson<TaskSelf>(ep, "GET", "/v1/self", sig(o)),
    transitions: (o) => ({
      async *[Symbol.asyncIterator]() {
        const res = await call(ep, "GET", `/v1/env/transitions${query({ max: o?.max })}`, sig(o));
        for await (const t of ndjson<Omit<Transition, "ok" | "error">>(res, o?.signal)) {
          const answer = (body: string, a?: Signalled) =>
            callJson(ep, "POST", `/v1/env/transitions/${enc(t.id)}`, { body, ...sig(a) }).then(() => {});
          yield {
            ...t,
            ok: (a) => answer('{"ok":true}', a),
            error: (message, a) => answer(JSON.stringify({ error: message || "failed" }), a),
          };
        }
      },
    }),
    answer: async (id, result, o) => {
      const body = result.error !== undefined
        ? JSON.stringify({ error: result.error || "failed" })
        : '{"ok":true}';
      await callJson(ep, "POST", `/v1/env/transitions/${enc(id)}`, { body, ...sig(o) });
    },
    coll: collClient(ep),
    goError: async (message, o) => {
      await callJson(ep, "POST", "/v1/env/error", { body: message, ...sig(o) });
    },
    kv: {
      put: (key, value, o) => callJson(ep, "PUT", `/v1/kv/${enc(key)}`, { body: value, ...sig(o) }),
      get: (key, o) =>
        callJson<KvResult>(
          ep,
          "GET",
          `/v1/kv/${enc(key)}${query({ waitCount: o?.waitCount, timeout: o?.timeoutMs })}`,
          sig(o),
        ),
      delete: (key, o) => callJson(ep, "DELETE", `/v1/kv/${enc(key)}`, sig(o)),
      watch: (o) => ({
        async *[Symbol.asyncIterator]() {
          const res = await call(
            ep,
            "GET",
            `/v1/watch${query({ key: o?.key, prefix: o?.prefix, from: o?.from })}`,
            sig(o),
          );
          yield* ndjson<KvResult>(res, o?.signal);
        },
      }),
    },
    cmd: {
      async send(payload, o) {
        const r = await callJson<
          { id: string; timedOut: boolean; replies: (Omit<CommandReply, "payload"> & { data: string })[] }
        >(
          ep,
          "POST",
          `/v1/cmd${query({ condition: o?.condition, waitReplies: o?.waitReplies, timeout: o?.timeoutMs })}`,
          { body: payload, ...sig(o) },
        );
        return {
          id: r.id,
          timedOut: r.timedOut,
          replies: r.replies.map(({ data, ...rest }) => ({ ...rest, payload: fromBase64(data) })),
        };
      },
      listen: (o) => ({
        async *[Symbol.asyncIterator]() {
          const res = await call(
            ep,
            "GET",
            `/v1/cmd${query({ events: o?.events ? 1 : undefined, max: o?.max })}`,
            sig(o),
          );
          for await (
            const item of ndjson<(Omit<ReceivedCommand, "payload"> & { data: string }) | TaskDone>(
              res,
              o?.signal,
            )
          ) {
            if (item.type === "cmd") {
              const { data, ...rest } = item;
              yield { ...rest, payload: fromBase64(data) };
            } else yield item;
          }
        },
      }),
      reply: (id, payload, o) => reply({ id, payload: bytes(payload) }, o?.signal),
    },
  };
}

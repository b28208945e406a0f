/**
 * The local task API: an HTTP/1.1 + JSON server on a Unix socket (mode 0600, in a private directory) that
 * the agent's tasks reach through `SHOAL_SOCKET`, each with its own token from `SHOAL_TASK_TOKEN`. The
 * token names the task, so a task can never write as another; DDS's property rules are enforced here. The
 * same API listens on a loopback TCP port too (`SHOAL_API_PORT`, the token required all the same), so that
 * a shell task can speak it with bash's `/dev/tcp` alone, without a process per request.
 *
 * Routes (all need `Authorization: Bearer <token>`):
 * - `GET /v1/kv/<key>?waitCount=N&timeout=MS` → `{key, values: [{value, sender, path, version}]}`
 * - `PUT /v1/kv/<key>` (body: the value) → `{key, version}`; `DELETE /v1/kv/<key>` leaves a tombstone
 * - `GET /v1/watch?key=K|prefix=P&from=VERSION` → NDJSON, one `{key, values: [one value]}` per update
 * - `POST /v1/cmd?condition=C&waitReplies=N&timeout=MS` (body: payload) → `{id, replies, timedOut}`; the
 *   condition `agent` or `agent:<peer ID or host>` addresses agents, whose replies carry their `host`
 * - `GET /v1/cmd?events=1` → NDJSON of commands for this task (and task-done events with `events=1`)
 * - `POST /v1/cmd/<id>/reply` (body: payload)
 * - `POST /v1/cmd/replies` (body: `{replies: [{id, data}]}`, data in base64) → `{results: [{ok} | {error}]}`,
 *   one result per reply in order: many replies in one request (the TypeScript client coalesces them)
 * - `GET /v1/self` → the task's topology, path, ID and properties
 * - `GET /v1/env/transitions?max=N` → NDJSON of environment transitions for this task (`direct` mode);
 *   `POST /v1/env/transitions/<id>` (body `{"ok":true}` or `{"error":"why"}`) answers one;
 *   `POST /v1/env/error` (body: why) raises GO_ERROR (see `_task_transitions.ts`)
 * - `/v1/<area>/…` of other rooms (`coll` for collectives), registered in {@linkcode TaskApi.routes}
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ApiError,
  intParam,
  payloadJson,
  readBody,
  sendError,
  sendJson,
  startNdjson,
} from "./_task_api_http.ts";
import { type Command, type CustomCommands, MAX_PAYLOAD_BYTES, type RoutableTask } from "../commands/mod.ts";
import type { KvReplication } from "../kv/mod.ts";
import { type KvEntry, type KvStore, MAX_VALUE_BYTES, toValue } from "../kv/mod.ts";
import type { TaskSpec } from "../wire/mod.ts";
import * as v from "valibot";
import { answerPayload, type TaskTransition, transitionOf } from "./_task_transitions.ts";

/** Most replies in one `POST /v1/cmd/replies`, and the most bytes of its body. */
const MAX_REPLIES = 1024;
const MAX_REPLIES_BYTES = 8 * 1024 * 1024;
const RepliesSchema = v.object({
  replies: v.pipe(
    v.array(v.object({ id: v.pipe(v.string(), v.maxLength(1024)), data: v.string() })),
    v.maxLength(MAX_REPLIES),
  ),
});
type ReplyResult = { ok: true } | { error: { status: number; name: string; message: string } };

/** A task's end, as told to tasks that listen for events. */
export interface TaskDoneEvent {
  type: "task:done";
  topologyId: string;
  path: string;
  id: string;
  code: number | null;
  signal: string | null;
}

interface Registration extends RoutableTask {
  token: string;
  collectionPath: string;
  properties: Map<string, { access: "read" | "write" | "readwrite"; scope: "global" | "collection" }>;
  /** Commands and task-done events that arrived while no listener was connected (bounded). */
  mailbox: (Command | TaskDoneEvent)[];
  listeners: Set<(item: Command | TaskDoneEvent) => void>;
  /** Environment transitions not yet taken, and who waits for them. */
  transitions: TaskTransition[];
  transitionListeners: Set<(t: TaskTransition) => void>;
}

/** The calling task, as a route of another room gets it. */
export interface TaskCaller extends RoutableTask {
  /** "" outside collections. */
  collectionPath: string;
}

/** A request to a route of another room: its path below `/v1/<area>/`, its body on demand. */
export interface TaskRouteRequest {
  method: string;
  parts: string[];
  url: URL;
  /** Reads the body (at most `max` bytes; 413 beyond). */
  body(max: number, what: string): Promise<Uint8Array>;
  /** Aborts when the task closes the connection. */
  signal: AbortSignal;
}

/** A route of another room: answers with a status and a JSON body (errors: `{error: {name, message, …}}`). */
export type TaskRoute = (
  task: TaskCaller,
  req: TaskRouteRequest,
) => Promise<{ status: number; body: unknown }>;

/** What {@linkcode startTaskApi} needs. */
export interface TaskApiInit {
  store: KvStore;
  replication: KvReplication;
  commands: CustomCommands;
}

const MAILBOX = 10_000;

/** The task API server of one agent. */
export class TaskApi implements AsyncDisposable {
  readonly socketPath: string;
  /** The same API on a loopback TCP port (`SHOAL_API_PORT`), for shells with nothing but bash (`/dev/tcp`). */
  port = 0;
  readonly #dir: string;
  readonly #server: Server;
  readonly #tcp: Server;
  readonly #init: TaskApiInit;
  readonly #byToken = new Map<string, Registration>();
  readonly #byTask = new Map<string, Registration>();
  #closed = false;
  /** Set by the agent: a task raised GO_ERROR for its environment. */
  onGoError: ((task: RoutableTask, message: string) => Promise<unknown>) | undefined;
  /** Routes `/v1/<area>/…` served by other rooms, by area; set by the agent's wiring. */
  readonly routes: Map<string, TaskRoute> = new Map();

  constructor(init: TaskApiInit) {
    this.#init = init;
    this.#dir = mkdtempSync(join(tmpdir(), "shoal-api-"));
    chmodSync(this.#dir, 0o700);
    this.socketPath = join(this.#dir, "api.sock");
    const handle = (req: IncomingMessage, res: ServerResponse) =>
      void this.#handle(req, res).catch((err) => sendError(res, err));
    this.#server = createServer(handle);
    this.#tcp = createServer(handle);
    init.commands.delivered.on(({ task, command }) => {
      const reg = this.#byTask.get(`${task.topologyId}\0${task.path}`);
      if (!reg) return;
      const t = transitionOf(command, reg.path);
      if (t !== null) {
        if (t === undefined) return;
        if (reg.transitionListeners.size === 0) reg.transitions.push(t);
        else for (const l of reg.transitionListeners) l(t);
        return;
      }
      if (reg.listeners.size === 0) {
        if (reg.mailbox.length < MAILBOX) reg.mailbox.push(command);
      } else for (const l of reg.listeners) l(command);
    });
  }

  /** Listens on the socket and on a loopback port. */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.socketPath, () => resolve());
    });
    chmodSync(this.socketPath, 0o600);
    await new Promise<void>((resolve, reject) => {
      this.#tcp.once("error", reject);
      this.#tcp.listen(0, "127.0.0.1", () => resolve());
    });
    this.port = (this.#tcp.address() as AddressInfo).port;
  }

  /** Registers a task about to start; returns the variables to add to its environment. */
  register(spec: TaskSpec): Record<string, string> {
    const k = `${spec.topologyId}\0${spec.path}`;
    const old = this.#byTask.get(k);
    if (old) this.#byToken.delete(old.token);
    const token = randomBytes(24).toString("base64url");
    const reg: Registration = {
      topologyId: spec.topologyId,
      path: spec.path,
      id: spec.id,
      token,
      collectionPath: spec.collectionPath ?? "",
      properties: new Map((spec.properties ?? []).map((p) => [p.name, { access: p.access, scope: p.scope }])),
      mailbox: [],
      listeners: old?.listeners ?? new Set(),
      transitions: [],
      transitionListeners: old?.transitionListeners ?? new Set(),
    };
    this.#byToken.set(token, reg);
    this.#byTask.set(k, reg);
    return { SHOAL_SOCKET: this.socketPath, SHOAL_API_PORT: String(this.port), SHOAL_TASK_TOKEN: token };
  }

  /** Forgets a task that ended for good: its token stops working. */
  unregister(topologyId: string, path: string): void {
    const reg = this.#byTask.get(`${topologyId}\0${path}`);
    if (!reg) return;
    this.#byTask.delete(`${topologyId}\0${path}`);
    this.#byToken.delete(reg.token);
  }

  /** Tasks registered here, for command routing. */
  tasks(): Iterable<RoutableTask> {
    return this.#byTask.values();
  }

  /** Tells listening tasks of the same topology that a task ended. */
  taskDone(e: TaskDoneEvent): void {
    for (const reg of this.#byTask.values()) {
      if (reg.topologyId !== e.topologyId || reg.path === e.path) continue;
      if (reg.listeners.size > 0) { for (const l of reg.listeners) l(e); }
      else if (reg.mailbox.length < MAILBOX) reg.mailbox.push(e);
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const auth = req.headers.authorization ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : String(req.headers["x-shoal-token"] ?? "");
    const reg = this.#byToken.get(token);
    if (!reg) {
      throw new ApiError(
        401,
        "UnauthorizedError",
        "Unknown or missing task token; use the SHOAL_TASK_TOKEN given to the task",
      );
    }
    const url = new URL(req.url ?? "/", "http://task");
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const [v1, area, name, sub] = parts;
    if (v1 !== "v1") throw new ApiError(404, "NotFoundError", `No route "${url.pathname}"`);
    if (area === "self" && req.method === "GET") {
      return sendJson(res, 200, {
        topologyId: reg.topologyId,
        path: reg.path,
        id: reg.id,
        collectionPath: reg.collectionPath || null,
        properties: [...reg.properties].map(([n, p]) => ({ name: n, ...p })),
      });
    }
    if (area === "kv" && name !== undefined && parts.length === 3) {
      if (req.method === "GET") return await this.#get(reg, name, url, res);
      if (req.method === "PUT" || req.method === "POST") {
        const body = await readBody(req, MAX_VALUE_BYTES, `Value of "${name}"`);
        return sendJson(res, 200, this.#write(reg, name, new TextDecoder().decode(body), false));
      }
      if (req.method === "DELETE") return sendJson(res, 200, this.#write(reg, name, "", true));
    }
    if (area === "watch" && req.method === "GET") return this.#watch(reg, url, req, res);
    if (area === "env") return await this.#env(reg, name, sub, url, req, res);
    const route = area === undefined ? undefined : this.routes.get(area);
    if (route) {
      const closed = new AbortController();
      res.once("close", () => closed.abort());
      const caller = {
        topologyId: reg.topologyId,
        path: reg.path,
        id: reg.id,
        collectionPath: reg.collectionPath,
      };
      const r = await route(caller, {
        method: req.method ?? "GET",
        parts: parts.slice(2),
        url,
        body: (max, what) => readBody(req, max, what),
        signal: closed.signal,
      });
      if (!closed.signal.aborted) sendJson(res, r.status, r.body);
      return;
    }
    if (area === "cmd") {
      if (name === undefined && req.method === "POST") return await this.#send(reg, url, req, res);
      if (name === undefined && req.method === "GET") return this.#listen(reg, url, res);
      if (name === "replies" && sub === undefined && req.method === "POST") {
        return sendJson(res, 200, {
          results: this.#replies(reg, await readBody(req, MAX_REPLIES_BYTES, "Replies")),
        });
      }
      if (name !== undefined && sub === "reply" && req.method === "POST") {
        const payload = await readBody(req, MAX_PAYLOAD_BYTES, "Reply");
        this.#init.commands.reply(name, { id: reg.id, path: reg.path }, payload);
        return sendJson(res, 200, { ok: true });
      }
    }
    throw new ApiError(404, "NotFoundError", `No route ${req.method} "${url.pathname}"`);
  }

  /** The replies of one `POST /v1/cmd/replies`, each on its own: one that fails fails alone. */
  #replies(reg: Registration, body: Uint8Array): ReplyResult[] {
    let parsed: v.InferOutput<typeof RepliesSchema>;
    try {
      parsed = v.parse(RepliesSchema, JSON.parse(new TextDecoder().decode(body)));
    } catch (err) {
      throw new ApiError(400, "BadRequestError", `Replies: ${(err as Error).message}`);
    }
    return parsed.replies.map((r) => {
      try {
        this.#init.commands.reply(r.id, { id: reg.id, path: reg.path }, Buffer.from(r.data, "base64"));
        return { ok: true };
      } catch (err) {
        return { error: { status: 400, name: (err as Error).name, message: (err as Error).message } };
      }
    });
  }

  async #env(
    reg: Registration,
    name: string | undefined,
    id: string | undefined,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (name === "transitions" && id === undefined && req.method === "GET") {
      const max = intParam(url, "max") ?? Infinity;
      let sent = 0;
      const write = startNdjson(res);
      const send = (t: TaskTransition) => {
        if (sent >= max) return void reg.transitions.unshift(t);
        sent++;
        write(t);
        if (sent >= max) {
          reg.transitionListeners.delete(send);
          res.end();
        }
      };
      const queued = reg.transitions.splice(0);
      reg.transitionListeners.add(send);
      for (const t of queued) send(t);
      res.once("close", () => reg.transitionListeners.delete(send));
      return;
    }
    if (name === "transitions" && id !== undefined && req.method === "POST") {
      const body = new TextDecoder().decode(await readBody(req, MAX_PAYLOAD_BYTES, "Answer"));
      let payload: Uint8Array;
      try {
        payload = answerPayload(body);
      } catch (err) {
        throw new ApiError(400, "BadRequestError", (err as Error).message);
      }
      try {
        this.#init.commands.reply(id, { id: reg.id, path: reg.path }, payload);
      } catch (err) {
        throw new ApiError(404, "NotFoundError", (err as Error).message);
      }
      return sendJson(res, 200, { ok: true });
    }
    if (name === "error" && req.method === "POST") {
      const message = new TextDecoder().decode(await readBody(req, 16 * 1024, "Error message")).trim();
      if (!this.onGoError) throw new ApiError(503, "UnavailableError", "This agent runs no environments");
      const r = await this.onGoError(reg, message || "no reason given");
      return sendJson(res, 200, r);
    }
    throw new ApiError(404, "NotFoundError", `No route ${req.method} "${url.pathname}"`);
  }

  /** The scope of `key` for `reg`, after checking that it may `need` it. */
  #scope(reg: Registration, key: string, need: "read" | "write"): string {
    const p = reg.properties.get(key);
    if (!p) {
      throw new ApiError(
        403,
        "AccessDeniedError",
        `Task "${reg.path}" does not declare property "${key}"; add it to the task's <properties> in the topology`,
      );
    }
    if (p.access !== "readwrite" && p.access !== need) {
      throw new ApiError(
        403,
        "AccessDeniedError",
        `Task "${reg.path}" may not ${need} property "${key}": it is declared access="${p.access}"`,
      );
    }
    return p.scope === "collection" ? reg.collectionPath : "";
  }

  #readable(reg: Registration, e: KvEntry): boolean {
    if (e.topologyId !== reg.topologyId) return false;
    const p = reg.properties.get(e.key);
    if (!p || p.access === "write") return false;
    return e.scope === (p.scope === "collection" ? reg.collectionPath : "");
  }

  #write(reg: Registration, key: string, value: string, deleted: boolean): { key: string; version: string } {
    const scope = this.#scope(reg, key, "write");
    const e = this.#init.replication.write({
      topologyId: reg.topologyId,
      key,
      scope,
      sender: reg.id,
      path: reg.path,
      value,
      deleted,
    });
    return { key, version: e.version };
  }

  async #get(reg: Registration, key: string, url: URL, res: ServerResponse): Promise<void> {
    const scope = this.#scope(reg, key, "read");
    const { store } = this.#init;
    const want = intParam(url, "waitCount") ?? (url.searchParams.has("wait") ? 1 : 0);
    const timeoutMs = intParam(url, "timeout") ?? 0;
    const have = () => store.count(reg.topologyId, key, scope);
    if (have() < want) {
      const closed = new AbortController();
      res.once("close", () => closed.abort());
      const signals = [closed.signal, ...(timeoutMs > 0 ? [AbortSignal.timeout(timeoutMs)] : [])];
      const signal = AbortSignal.any(signals);
      await new Promise<void>((resolve) => {
        const off = store.changes.on(() => {
          if (have() >= want) done();
        });
        const done = () => {
          off();
          signal.removeEventListener("abort", done);
          resolve();
        };
        signal.addEventListener("abort", done);
      });
      if (closed.signal.aborted) return;
      if (have() < want) {
        throw new ApiError(
          408,
          "TimeoutError",
          `Timed out after ${timeoutMs} ms waiting for ${want} value(s) of "${key}" (have ${have()})`,
        );
      }
    }
    sendJson(res, 200, { key, values: store.values(reg.topologyId, key, scope).map((e) => toValue(e)) });
  }

  #watch(reg: Registration, url: URL, req: IncomingMessage, res: ServerResponse): void {
    const key = url.searchParams.get("key");
    const prefix = url.searchParams.get("prefix") ?? "";
    const from = url.searchParams.get("from");
    if (key !== null) this.#scope(reg, key, "read");
    const wanted = (e: KvEntry) =>
      this.#readable(reg, e) && (key !== null ? e.key === key : e.key.startsWith(prefix));
    const write = startNdjson(res);
    const line = (e: KvEntry) => write({ key: e.key, values: [toValue(e)] });
    if (from !== null) {
      const old = this.#init.store.entries(reg.topologyId).filter((e) => wanted(e) && e.version > from);
      for (const e of old.sort((a, b) => a.version < b.version ? -1 : 1)) line(e);
    }
    const off = this.#init.store.changes.on((e) => {
      if (wanted(e)) line(e);
    });
    req.once("close", off);
    res.once("close", off);
  }

  async #send(reg: Registration, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const payload = await readBody(req, MAX_PAYLOAD_BYTES, "Command");
    const closed = new AbortController();
    res.once("close", () => closed.abort());
    const result = await this.#init.commands.send({
      topologyId: reg.topologyId,
      condition: url.searchParams.get("condition") ?? "",
      payload,
      sender: { id: reg.id, path: reg.path },
    }, {
      waitReplies: intParam(url, "waitReplies") ?? 0,
      timeoutMs: intParam(url, "timeout") ?? 0,
      signal: closed.signal,
    });
    sendJson(res, 200, {
      id: result.id,
      timedOut: result.timedOut,
      replies: result.replies.map((r) => ({
        sender: r.sender.id,
        path: r.sender.path,
        ...(r.sender.host !== undefined ? { host: r.sender.host } : {}),
        ...payloadJson(r.payload),
      })),
    });
  }

  #listen(reg: Registration, url: URL, res: ServerResponse): void {
    const events = url.searchParams.get("events") === "1";
    const max = intParam(url, "max") ?? Infinity;
    let sent = 0;
    const write = startNdjson(res);
    const send = (item: Command | TaskDoneEvent) => {
      if (item.type === "task:done") {
        if (events) write(item);
        return;
      }
      if (sent >= max) {
        if (reg.mailbox.length < MAILBOX) reg.mailbox.push(item);
        return;
      }
      sent++;
      write({
        type: "cmd",
        id: item.id,
        sender: item.sender.id,
        path: item.sender.path,
        condition: item.condition,
        ...payloadJson(item.payload),
      });
      if (sent >= max) {
        reg.listeners.delete(send);
        res.end();
      }
    };
    const queued = reg.mailbox.splice(0);
    reg.listeners.add(send);
    for (const c of queued) send(c);
    res.once("close", () => reg.listeners.delete(send));
  }

  /** Stops serving and removes the socket's directory. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const server of [this.#server, this.#tcp]) {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Creates the task API and listens on its socket. */
export async function startTaskApi(init: TaskApiInit): Promise<TaskApi> {
  const api = new TaskApi(init);
  await api.listen();
  return api;
}

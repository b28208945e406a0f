/**
 * The dashboard's HTTP server (`shoal ui`): the embedded page and its assets, a JSON API over the
 * {@linkcode Feed}, and server-sent event streams (mesh events; one task's log). Every request needs the
 * access token — the page can send commands into the mesh — given once as `?token=` and then kept in a
 * same-site, HTTP-only cookie.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { formatHostPort, parseHostPort } from "../metrics/mod.ts";
import { ASSETS } from "./_assets.ts";
import { UiListenError } from "./errors.ts";
import type { EnvRecord } from "../env/mod.ts";
import { envView } from "./envs.ts";
import type { Feed, FeedMessage } from "./feed.ts";

const COOKIE = "shoal_ui";
/** env/'s errors of a control, by name, and the status the page gets with their reason. */
const ENV_ERROR_STATUS: Record<string, number> = {
  EnvEventRefusedError: 409,
  EnvConflictError: 409,
  EnvNotFoundError: 404,
  // The transition ran and failed: the environment is in ERROR, the body says why.
  EnvTransitionError: 422,
  CommanderError: 502,
};
const MAX_BODY_BYTES = 1024 * 1024;

/** Options for {@linkcode startUiServer}. */
export interface UiServerInit {
  /** `HOST:PORT`; port 0 picks a free one. */
  listen: string;
  token: string;
  feed: Feed;
  session: string;
  /** Who presses the environments' buttons, for their history (default: `dashboard`). */
  by?: string;
  signal?: AbortSignal;
}

/** A listening dashboard. */
export interface UiServer extends AsyncDisposable {
  /** The bound `host:port`. */
  readonly address: string;
  /** The URL to open, token included. */
  readonly url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

/** Starts the dashboard server; throws {@linkcode UiListenError} when it cannot listen. */
export async function startUiServer(init: UiServerInit): Promise<UiServer> {
  const { host, port } = parseHostPort(init.listen, "dashboard address");
  const token = Buffer.from(init.token);
  const authorised = (req: IncomingMessage, query: URLSearchParams): boolean => {
    const given = query.get("token") ?? cookie(req, COOKIE) ??
      req.headers.authorization?.replace(/^Bearer /, "");
    if (!given) return false;
    const b = Buffer.from(given);
    return b.length === token.length && timingSafeEqual(b, token);
  };
  const streams = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    handle(req, res, url).catch((err) => {
      const status = err instanceof HttpError ? err.status : 502;
      if (!res.headersSent) {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
      } else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!authorised(req, url.searchParams)) {
      const page = url.pathname === "/" || url.pathname === "/index.html";
      res.writeHead(401, { "content-type": page ? "text/html; charset=utf-8" : "application/json" });
      res.end(
        page
          ? "<!doctype html><title>shoal</title><h1>Access token required</h1>" +
            "<p>Open the URL that <code>shoal ui</code> printed, with its <code>?token=</code>.</p>"
          : JSON.stringify({ error: "Access token required: open the URL shoal ui printed" }),
      );
      return;
    }
    if (url.searchParams.has("token") && req.method === "GET" && !url.pathname.startsWith("/api/")) {
      // Keep the token out of the address bar and the history: a cookie from now on.
      res.writeHead(303, {
        location: url.pathname,
        "set-cookie": `${COOKIE}=${init.token}; HttpOnly; SameSite=Strict; Path=/`,
      });
      res.end();
      return;
    }
    if (req.method === "POST" && !sameOrigin(req)) throw new HttpError(403, "Cross-origin request refused");
    const path = url.pathname;
    if (path === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    const asset = ASSETS[path === "/" ? "/index.html" : path];
    if (req.method === "GET" && asset) {
      res.writeHead(200, {
        "content-type": asset.type,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
      });
      res.end(asset.body);
      return;
    }
    const param = (name: string) => {
      const v = url.searchParams.get(name);
      if (!v) throw new HttpError(400, `Missing query parameter "${name}"`);
      return v;
    };
    const signal = AbortSignal.timeout(30_000);
    if (req.method === "GET" && path === "/api/state") {
      const [agents, topologies, environments] = await Promise.all([
        init.feed.refreshAgents({ signal }),
        init.feed.topologies({ signal }),
        init.feed.envs.list({ signal }),
      ]);
      return json(res, { session: init.session, agents, topologies, environments });
    }
    if (req.method === "GET" && path === "/api/envs") {
      return json(res, { environments: await init.feed.envs.list({ signal }) });
    }
    if (req.method === "POST" && path === "/api/env/control") {
      return await controlEnv(req, res);
    }
    if (req.method === "GET" && path === "/api/tasks") {
      return json(res, { tasks: await init.feed.tasks(param("topology"), { signal }) });
    }
    if (req.method === "GET" && path === "/api/kv") {
      return json(res, { entries: await init.feed.kv(param("topology"), { signal }) });
    }
    if (req.method === "POST" && path === "/api/cmd") {
      const body = await readJson(req) as Record<string, unknown>;
      const payload = typeof body.payload === "string" ? body.payload : "";
      if (!payload) throw new HttpError(400, "The command is empty; type what to send");
      const condition = typeof body.condition === "string" ? body.condition : "";
      const timeoutMs = Math.min(Math.max(Number(body.timeoutS ?? 5), 0.1), 600) * 1000;
      const wait = body.waitReplies === undefined || body.waitReplies === ""
        ? undefined
        : Number(body.waitReplies);
      if (wait !== undefined && !(Number.isInteger(wait) && wait >= 0)) {
        throw new HttpError(400, `"${body.waitReplies}" is not a number of replies`);
      }
      try {
        return json(
          res,
          await init.feed.command({
            topologyId: typeof body.topologyId === "string" ? body.topologyId : "",
            condition,
            payload,
            timeoutMs,
            ...(wait !== undefined ? { waitReplies: wait } : {}),
          }),
        );
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError || (err as Error).name === "RemoteError") {
          throw new HttpError(400, (err as Error).message);
        }
        throw err;
      }
    }
    if (req.method === "GET" && path === "/api/events") return events(req, res);
    if (req.method === "GET" && path === "/api/logs") {
      return await logs(req, res, {
        topologyId: param("topology"),
        path: param("path"),
        agent: param("agent"),
      });
    }
    throw new HttpError(404, `No such page: "${path}"`);
  }

  /** `{id, event, args?}` → what `shoal env control --json` reports; refusals with their reason. */
  async function controlEnv(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req) as Record<string, unknown>;
    const id = typeof body.id === "string" ? body.id : "";
    const event = typeof body.event === "string" ? body.event.toUpperCase() : "";
    if (!id) throw new HttpError(400, 'Missing "id": the environment to control');
    if (!event) throw new HttpError(400, 'Missing "event": CONFIGURE, START_ACTIVITY, …');
    const args = body.args ?? {};
    if (
      typeof args !== "object" || args === null || Array.isArray(args) ||
      Object.values(args).some((v) => typeof v !== "string")
    ) {
      throw new HttpError(400, '"args" must map names to strings, e.g. {"detector": "TPC"}');
    }
    try {
      const result = await init.feed.envs.control({
        id,
        event,
        args: args as Record<string, string>,
        by: init.by ?? "dashboard",
      });
      return json(res, result);
    } catch (err) {
      const name = (err as Error).name;
      const status = ENV_ERROR_STATUS[name];
      if (status === undefined) throw err;
      const e = err as Error & { allowed?: string[]; state?: string; result?: { record: EnvRecord } };
      return json(res, {
        error: e.message,
        kind: name,
        ...(e.state ? { state: e.state } : {}),
        ...(e.allowed ? { allowed: e.allowed } : {}),
        ...(e.result ? { env: envView(e.result.record) } : {}),
      }, status);
    }
  }

  function openStream(req: IncomingMessage, res: ServerResponse): AbortSignal {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    res.write(": shoal\n\n");
    streams.add(res);
    const gone = new AbortController();
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    req.once("close", () => {
      clearInterval(keepAlive);
      streams.delete(res);
      gone.abort();
    });
    return gone.signal;
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    const signal = openStream(req, res);
    const off = init.feed.messages.on((m: FeedMessage) => send(res, m.kind, m));
    signal.addEventListener("abort", off, { once: true });
  }

  async function logs(
    req: IncomingMessage,
    res: ServerResponse,
    task: { topologyId: string; path: string; agent: string },
  ): Promise<void> {
    const signal = openStream(req, res);
    try {
      for await (const chunk of init.feed.logs(task, { signal })) send(res, "log", chunk);
      send(res, "end", {});
    } catch (err) {
      if (!signal.aborted) send(res, "failed", { error: err instanceof Error ? err.message : String(err) });
    }
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (cause: NodeJS.ErrnoException) =>
      reject(
        new UiListenError(
          init.listen,
          `Cannot serve the dashboard on "${init.listen}": ${
            cause.code === "EADDRINUSE" ? "the port is in use; pick another, or port 0" : cause.message
          }`,
          { cause },
        ),
      );
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = formatHostPort(bound.address, bound.port);
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= new Promise<void>((resolve) => {
      for (const s of streams) s.end();
      server.close(() => resolve());
      server.closeAllConnections?.();
    });
  init.signal?.addEventListener("abort", () => void close(), { once: true });
  return {
    address,
    url: `http://${address}/?token=${encodeURIComponent(init.token)}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function send(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return undefined;
}

/** A POST from the page itself (browsers send Origin on POST); tools without Origin use the token header. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  return origin === undefined || origin === `http://${req.headers.host}`;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "Request body over 1 MiB");
    parts.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    throw new HttpError(400, "Request body is not JSON");
  }
}

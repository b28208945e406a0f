/**
 * Serving task logs to tools: every run's stdout/stderr of the matching tasks, then (with `follow`) what
 * the tasks write from then on, as length-prefixed CBOR chunks on one stream (DDS only had a tarball).
 *
 * @module
 */
import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { lpStream } from "@libp2p/utils";
import { decode, encode, type MeshNode } from "../../mesh/mod.ts";
import { flatPath, logDir } from "./_sandbox.ts";
import { type LogChunk, LOGS_PROTOCOL, LogsRequestSchema } from "../wire/mod.ts";
import type { TaskRunner } from "./runner.ts";

const CHUNK = 64 * 1024;
const POLL_MS = 200;
const DEFAULT_TAIL = 1024 * 1024;

interface Tracked {
  topologyId: string;
  path: string;
  stream: "stdout" | "stderr";
  file: string;
  offset: number;
}

async function logFilesOf(workDir: string, topologyId: string, path: string): Promise<string[]> {
  const dir = logDir(workDir, topologyId);
  const prefix = `${flatPath(path)}.`;
  try {
    return (await readdir(dir)).filter((f) => f.startsWith(prefix) && /\.(out|err)$/.test(f)).sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/** Serves {@linkcode LOGS_PROTOCOL} on `node` from the runner's log files under `workDir`. */
export async function startLogService(
  init: { node: MeshNode; runner: TaskRunner; workDir: string },
): Promise<void> {
  const { node, runner, workDir } = init;
  await node.libp2p.handle(LOGS_PROTOCOL, async (stream) => {
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 });
    let req;
    try {
      req = decode((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray(), LogsRequestSchema, {
        what: LOGS_PROTOCOL,
      });
    } catch (err) {
      node.malformed(LOGS_PROTOCOL, err);
      stream.abort(err as Error);
      return;
    }
    let re: RegExp;
    try {
      re = new RegExp(req.pathRegex);
    } catch (err) {
      stream.abort(err as Error);
      return;
    }
    const tracked = new Map<string, Tracked>();
    const discover = async () => {
      const tasks = runner.list(req.topologyId ? { topologyId: req.topologyId } : {}).filter((t) =>
        re.test(t.path)
      );
      for (const t of tasks) {
        for (const file of await logFilesOf(workDir, t.topologyId, t.path)) {
          if (tracked.has(file)) continue;
          const size = (await stat(file).catch(() => ({ size: 0 }))).size;
          const tail = req.tailBytes ?? DEFAULT_TAIL;
          tracked.set(file, {
            topologyId: t.topologyId,
            path: t.path,
            stream: file.endsWith(".out") ? "stdout" : "stderr",
            file,
            offset: Math.max(0, size - tail),
          });
        }
      }
    };
    const pump = async () => {
      for (const t of tracked.values()) {
        const fh = await open(t.file, "r").catch(() => undefined);
        if (!fh) continue;
        try {
          while (true) {
            const buf = new Uint8Array(CHUNK);
            const { bytesRead } = await fh.read(buf, 0, CHUNK, t.offset);
            if (bytesRead === 0) break;
            t.offset += bytesRead;
            const chunk: LogChunk = {
              topologyId: t.topologyId,
              path: t.path,
              stream: t.stream,
              file: t.file.split("/").pop()!,
              data: buf.subarray(0, bytesRead),
            };
            await lp.write(encode(chunk));
          }
        } finally {
          await fh.close();
        }
      }
    };
    try {
      await discover();
      await pump();
      while (req.follow && stream.status === "open" && stream.writeStatus === "writable") {
        await new Promise((r) => setTimeout(r, POLL_MS));
        await discover();
        await pump();
      }
      await stream.close();
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }, { maxInboundStreams: 256 });
}

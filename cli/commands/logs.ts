/**
 * `shoal logs`: the matching tasks' stdout and stderr from whichever agents run them, live with `-f`,
 * or copied into a plain directory tree with `--collect`.
 *
 * @module
 */
import type { Command } from "commander";
import { appendFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { lpStream } from "@libp2p/utils";
import { LogChunkSchema, LOGS_PROTOCOL } from "../../agent/mod.ts";
import { errorText, fetchMembers } from "../../commander/mod.ts";
import { type Silent, warnPartial } from "../partial.ts";
import { decode, encode } from "../../mesh/mod.ts";
import { connectCommander } from "../commander.ts";
import { ExitCode } from "../errors.ts";
import { intOption } from "../options.ts";
import { openSession } from "../session.ts";
import { pathRegex } from "../path_regex.ts";

interface LogsOptions {
  follow?: boolean;
  id?: string;
  collect?: string;
  tail?: number;
  prefix: boolean;
}

/** Registers `shoal logs`. */
export function registerLogs(program: Command): void {
  program.command("logs")
    .argument("[path-regex]", "only tasks whose runtime path matches", "")
    .option("-f, --follow", "keep printing what the tasks write")
    .option("--id <id>", "only tasks of this topology")
    .option("--tail <bytes>", "start this many bytes before the end of each file", intOption(0))
    .option("--collect <dir>", "copy the logs into <dir>/<topology>/<task path>/<file> instead of printing")
    .option("--no-prefix", "print lines without the [path] prefix")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal logs 'main/SleepTask_0'
  $ shoal logs -f 'Group/.*'
  $ shoal logs --collect ./logs`,
    )
    .action(async (regex: string, opts: LogsOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      pathRegex(regex);
      await using c = await connectCommander(await openSession(name));
      const agents = (await fetchMembers(c.init)).filter((m) => m.state === "alive");
      const stop = new AbortController();
      process.once("SIGINT", () => {
        process.exitCode = ExitCode.interrupted;
        stop.abort();
      });
      process.once("SIGTERM", () => stop.abort());
      const partial = new Map<string, { prefix: string; rest: string }>();
      const print = (key: string, prefix: string, text: string, out: NodeJS.WriteStream) => {
        const lines = ((partial.get(key)?.rest ?? "") + text).split("\n");
        partial.set(key, { prefix, rest: lines.pop() ?? "" });
        for (const line of lines) out.write(opts.prefix ? `[${prefix}] ${line}\n` : `${line}\n`);
      };
      let files = 0;
      const silent: Silent[] = [];
      await Promise.all(agents.map(async (agent) => {
        const stream = await c.peer.node.openStream(agent.id, LOGS_PROTOCOL).catch((err) => {
          silent.push({ id: agent.id, host: agent.host, reason: errorText(err) });
          return undefined;
        });
        if (!stream) return;
        const onAbort = () => stream.abort(new Error("stopped"));
        stop.signal.addEventListener("abort", onAbort);
        const lp = lpStream(stream, { maxDataLength: 1024 * 1024 });
        const seen = new Set<string>();
        try {
          await lp.write(encode({
            pathRegex: regex,
            ...(opts.id ? { topologyId: opts.id } : {}),
            ...(opts.follow && !opts.collect ? { follow: true } : {}),
            ...(opts.tail !== undefined ? { tailBytes: opts.tail } : {}),
          }));
          while (true) {
            const frame = await lp.read().catch(() => undefined);
            if (!frame) break;
            const chunk = decode(frame.subarray(), LogChunkSchema, {
              what: LOGS_PROTOCOL,
              maxBytes: 1024 * 1024,
            });
            if (opts.collect) {
              const dir = join(opts.collect, chunk.topologyId, chunk.path);
              await mkdir(dir, { recursive: true });
              await appendFile(join(dir, chunk.file), chunk.data);
              if (!seen.has(chunk.file)) files++;
              seen.add(chunk.file);
            } else {
              const out = chunk.stream === "stderr" ? process.stderr : process.stdout;
              print(`${agent.id}/${chunk.file}`, chunk.path, new TextDecoder().decode(chunk.data), out);
            }
          }
        } finally {
          stop.signal.removeEventListener("abort", onAbort);
        }
      }));
      for (const { prefix, rest } of partial.values()) {
        if (rest) process.stdout.write(`${opts.prefix ? `[${prefix}] ` : ""}${rest}\n`);
      }
      if (opts.collect) process.stdout.write(`Collected ${files} log file(s) into ${opts.collect}\n`);
      warnPartial(silent, "the logs above are partial");
    });
}

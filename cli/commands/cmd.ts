/**
 * `shoal cmd`: DDS custom commands. `send` routes a command by DDS condition (empty = every task but the
 * sender, a task ID, an exact path, or a regex on the path) and gathers replies; `recv` (inside a task)
 * prints the commands sent to it and can reply.
 *
 * @module
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import process from "node:process";
import { activeRecord, CMD_PROTOCOL, CmdResponseSchema, listenAsTool, replyAsTool } from "../../agent/mod.ts";
import { connectTask, type ReceivedCommand } from "../../client/mod.ts";
import { request } from "../../mesh/mod.ts";
import { connectCommander } from "../commander.ts";
import { CliError, DeadlineError, ExitCode } from "../errors.ts";
import { intOption, secondsOption } from "../options.ts";
import { openSession } from "../session.ts";
import { asCli, inTask } from "./kv.ts";

interface SendOptions {
  condition: string;
  waitReplies?: number;
  timeout?: number;
  file?: string;
  json?: boolean;
  id?: string;
}

function textOf(payload: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    return undefined;
  }
}

interface RecvOptions {
  count: number;
  timeout?: number;
  reply?: string;
  events?: boolean;
  json?: boolean;
  id?: string;
}

/** `shoal cmd recv` outside a task: a light peer hears commands for tools (condition empty or `tool`). */
async function recvAsTool(opts: RecvOptions, c: Command, signal: AbortSignal): Promise<number> {
  if (opts.events) {
    throw new CliError(
      "--events is for tasks; tools see task ends with `shoal monitor --json`",
      ExitCode.usage,
    );
  }
  const { session } = c.optsWithGlobals<{ session: string }>();
  await using cc = await connectCommander(await openSession(session));
  const topologyId = opts.id ?? (await activeRecord(cc.init)).id;
  const node = cc.peer.node;
  const replies: Promise<void>[] = [];
  let n = 0;
  await new Promise<void>((resolve) => {
    const done = () => {
      off();
      resolve();
    };
    const off = listenAsTool(node, topologyId, (cmd) => {
      if (signal.aborted || (opts.count > 0 && n >= opts.count)) return;
      const text = textOf(cmd.payload);
      const data = Buffer.from(cmd.payload).toString("base64");
      const line = {
        type: "cmd",
        id: cmd.id,
        sender: cmd.sender.id,
        path: cmd.sender.path,
        condition: cmd.condition,
      };
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ ...line, ...(text !== undefined ? { text } : {}), data })}\n`
          : `${text ?? data}\n`,
      );
      if (opts.reply !== undefined) {
        replies.push(replyAsTool(node, cmd, new TextEncoder().encode(opts.reply)).catch(() => {}));
      }
      if (opts.count > 0 && ++n >= opts.count) done();
    });
    signal.addEventListener("abort", done, { once: true });
  });
  await Promise.all(replies);
  return n;
}

/** Registers `shoal cmd`. */
export function registerCmd(program: Command): void {
  const cmd = program.command("cmd")
    .description("Custom commands between tasks and tools, routed by DDS conditions, with replies")
    .addHelpText(
      "after",
      `
Conditions (--condition): empty = every task of the topology but the sender; a task ID; an exact task
path; otherwise a regular expression on the task path.

Examples:
  $ shoal cmd send 'start run 42'                                  # every task
  $ shoal cmd send ping --condition 'main/group1/.*' --wait-replies 5 --timeout 10 --json
  $ shoal cmd send --file blob.bin --condition 4242424242           # a binary payload to one task ID
  $ shoal cmd recv --count 1 --reply pong                           # inside a task`,
    );

  cmd.command("send")
    .description("Send a command; with --wait-replies, print the replies")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal cmd send 'start run 42'
  $ shoal cmd send ping --condition 'main/group1/.*' --wait-replies 5 --timeout 10 --json
  $ shoal cmd send --file blob.bin --condition main/task_0`,
    )
    .argument("[payload]", "the command text (or use --file)", "")
    .option("--condition <c>", "which tasks get it (see above)", "")
    .option("--wait-replies <n>", "wait for n replies", intOption(0))
    .option("--timeout <seconds>", "stop waiting for replies after this long (exit code 5)", secondsOption)
    .option("--file <path>", "send the bytes of this file as the payload")
    .option(
      "--json",
      'print {"id", "timedOut", "replies": [{"sender", "path", "text", "data"}]} (data: base64)',
    )
    .option("--id <id>", "topology (tools only; default the only active one)")
    .action(async (text: string, opts: SendOptions, c: Command) => {
      const payload = opts.file ? new Uint8Array(readFileSync(opts.file)) : new TextEncoder().encode(text);
      const want = opts.waitReplies ?? 0;
      const timeoutMs = opts.timeout ?? 30_000;
      let result: {
        id: string;
        timedOut: boolean;
        replies: { sender: string; path: string; payload: Uint8Array }[];
      };
      if (inTask()) {
        result = await asCli(() =>
          connectTask().cmd.send(payload, { condition: opts.condition, waitReplies: want, timeoutMs })
        );
      } else {
        const { session } = c.optsWithGlobals<{ session: string }>();
        await using cc = await connectCommander(await openSession(session));
        const topologyId = (await activeRecord(cc.init, opts.id)).id;
        const r = await request(cc.peer.node, cc.peer.agent, CMD_PROTOCOL, {
          topologyId,
          condition: opts.condition,
          payload,
          waitReplies: want,
          timeoutMs,
        }, { schema: CmdResponseSchema, timeoutMs: timeoutMs + 10_000, maxBytes: 256 * 1024 * 1024 });
        result = {
          id: r.id,
          timedOut: r.timedOut,
          replies: r.replies.map((x) => ({ sender: x.sender.id, path: x.sender.path, payload: x.payload })),
        };
      }
      if (opts.json) {
        process.stdout.write(`${
          JSON.stringify({
            id: result.id,
            timedOut: result.timedOut,
            replies: result.replies.map((r) => {
              const t = textOf(r.payload);
              return {
                sender: r.sender,
                path: r.path,
                ...(t !== undefined ? { text: t } : {}),
                data: Buffer.from(r.payload).toString("base64"),
              };
            }),
          })
        }\n`);
      } else {
        for (const r of result.replies) {
          process.stdout.write(
            `${r.path || r.sender}: ${textOf(r.payload) ?? Buffer.from(r.payload).toString("base64")}\n`,
          );
        }
      }
      if (result.timedOut) {
        throw new DeadlineError(
          `Got ${result.replies.length} of ${want} replies within ${timeoutMs / 1000} s`,
        );
      }
    });

  cmd.command("recv")
    .description(
      "Print commands sent to this task (or, outside a task, to tools), optionally replying to each",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ shoal cmd recv --count 1 --reply pong
  $ shoal cmd recv --count 0 --json            # until stopped
  $ shoal cmd recv --events --count 1 --timeout 60
  $ shoal cmd recv --session s1 --id run42 --reply ack     # as a tool: commands with condition "" or "tool"`,
    )
    .option("--count <n>", "exit after n commands (default 1; 0 = keep going)", intOption(0), 1)
    .option("--timeout <seconds>", "give up after this long (exit code 5)", secondsOption)
    .option("--reply <text>", "reply this text to each command")
    .option(
      "--events",
      "also print (and count) task-done events of the topology: {type: 'task:done', path, code, signal}",
    )
    .option(
      "--json",
      'print {"type": "cmd", "id", "sender", "path", "condition", "text", "data"} per command',
    )
    .option("--id <id>", "topology (tools only; default the only active one)")
    .action(
      async (opts: RecvOptions, c: Command) => {
        const stop = new AbortController();
        process.once("SIGINT", () => stop.abort());
        process.once("SIGTERM", () => stop.abort());
        const timer = opts.timeout !== undefined ? setTimeout(() => stop.abort(), opts.timeout) : undefined;
        let n = 0;
        if (!inTask()) {
          try {
            n = await recvAsTool(opts, c, stop.signal);
          } finally {
            clearTimeout(timer);
          }
          if (opts.count > 0 && n < opts.count && opts.timeout !== undefined) {
            throw new DeadlineError(
              `Received ${n} of ${opts.count} command(s) within ${opts.timeout / 1000} s`,
            );
          }
          return;
        }
        const task = connectTask();
        try {
          await asCli(async () => {
            const items = task.cmd.listen({
              signal: stop.signal,
              ...(opts.events ? { events: true } : {}),
              ...(opts.count > 0 && !opts.events ? { max: opts.count } : {}),
            });
            for await (const item of items) {
              if (item.type === "task:done") {
                process.stdout.write(
                  `${
                    opts.json ? JSON.stringify(item) : `task:done ${item.path} ${item.code ?? item.signal}`
                  }\n`,
                );
                if (opts.count > 0 && ++n >= opts.count) break;
                continue;
              }
              const c: ReceivedCommand = item;
              if (opts.json) {
                const { payload, ...rest } = c;
                process.stdout.write(
                  `${JSON.stringify({ ...rest, data: Buffer.from(payload).toString("base64") })}\n`,
                );
              } else process.stdout.write(`${c.text ?? Buffer.from(c.payload).toString("base64")}\n`);
              if (opts.reply !== undefined) await task.cmd.reply(c.id, opts.reply);
              if (opts.count > 0 && ++n >= opts.count) break;
            }
          });
        } finally {
          clearTimeout(timer);
        }
        if (opts.count > 0 && n < opts.count && opts.timeout !== undefined) {
          throw new DeadlineError(
            `Received ${n} of ${opts.count} command(s) within ${opts.timeout / 1000} s`,
          );
        }
      },
    );
}

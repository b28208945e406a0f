/**
 * `shoal cmd`: DDS custom commands. `send` routes a command by DDS condition (empty = every task but the
 * sender, a task ID, an exact path, or a regex on the path; `tool`; `agent` or `agent:<peer ID or host>` for
 * agents themselves) and gathers replies; `recv` (inside a task) prints the commands sent to it and can reply.
 * Outside a task both work as a tool (`../cmd_tool.ts`, loaded only then).
 *
 * @module
 */
import type { Command } from "commander";
import { untilStopped } from "../exit_hooks.ts";
import { readFileSync } from "node:fs";
import process from "node:process";
// Leaf modules, not agent/mod.ts: a task's `shoal cmd send|recv` loads no mesh stack (tools: ../cmd_tool.ts).
import { AGENT_VERBS } from "../../agent/commands/mod.ts";
import { parseCondition } from "../../agent/commands/mod.ts";
import { connectTask, type ReceivedCommand } from "../../client/mod.ts";
import { CliError, DeadlineError, ExitCode } from "../errors.ts";
import { intOption, secondsOption } from "../options.ts";
import { textOf } from "../payload_text.ts";
import type { RecvOptions, SendResult } from "../cmd_tool.ts";
import { asCli, inTask } from "../task_helper.ts";

interface SendOptions {
  condition: string;
  waitReplies?: number;
  timeout?: number;
  file?: string;
  json?: boolean;
  id?: string;
}

/** How a reply's sender is shown: a task's path, else an agent's host and ID, else the ID. */
function senderLabel(r: { sender: string; path: string; host?: string }): string {
  if (r.path) return r.path;
  return r.host !== undefined ? `${r.host} (${r.sender})` : r.sender;
}

/** The condition, checked; a malformed `agent:` or `tool:` is a usage error. */
function checkedCondition(condition: string): ReturnType<typeof parseCondition> {
  try {
    return parseCondition(condition);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.usage, { cause: err });
  }
}

/** Registers `shoal cmd`. */
export function registerCmd(program: Command): void {
  const cmd = program.command("cmd")
    .addHelpText(
      "after",
      `
Conditions (--condition): empty = every task of the topology but the sender (and listening tools); a task
ID; an exact task path; \`tool\` or \`tool:<peer ID>\` = listening tools; \`agent\` = every agent,
\`agent:<peer ID or host>\` = one agent (or the agents of that host); otherwise a regular expression on the
task path. \`agent…\` and \`tool…\` never reach tasks (to match paths containing "agent", write '.*agent').

Agents answer ${AGENT_VERBS.join(", ")} (getlog N: the last N lines of the agent's log); other commands go
to the agent's \`--command-handler\` (see \`shoal agent --help\`). Commands to agents need no active
topology.

Examples:
  $ shoal cmd send 'start run 42'                                  # every task
  $ shoal cmd send ping --condition 'main/group1/.*' --wait-replies 5 --timeout 10 --json
  $ shoal cmd send --file blob.bin --condition 4242424242           # a binary payload to one task ID
  $ shoal cmd send status --condition agent --json                  # every agent's status
  $ shoal cmd send getlog 50 --condition agent:node7                # the agents on host node7
  $ shoal cmd recv --count 1 --reply pong                           # inside a task`,
    );

  registerSend(cmd);
  registerRecv(cmd);
}

function registerSend(cmd: Command): void {
  cmd.command("send")
    .description("Send a command; with --wait-replies, print the replies")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal cmd send 'start run 42'
  $ shoal cmd send ping --condition 'main/group1/.*' --wait-replies 5 --timeout 10 --json
  $ shoal cmd send --file blob.bin --condition main/task_0
  $ shoal cmd send ping --condition agent                     # waits for every alive agent's pong
  $ shoal cmd send status --condition agent:12D3KooW... --json
  $ shoal cmd send getlog 200 --condition agent:node7 --timeout 10
  $ shoal cmd send 'df /scratch' --condition agent --wait-replies 3   # answered by --command-handler

Conditions: see \`shoal cmd --help\`. Tools reach agents (\`--condition agent…\`) with no topology active
and, without --wait-replies, wait for a reply from every alive agent the condition names.`,
    )
    .argument("[payload...]", "the command text, words joined by spaces (or use --file)")
    .option(
      "--condition <c>",
      "who gets it: tasks, `tool`, `agent`, `agent:<peer ID or host>` (see shoal cmd --help)",
      "",
    )
    .option(
      "--wait-replies <n>",
      "wait for n replies (tools to agents: default every alive agent named)",
      intOption(0),
    )
    .option("--timeout <seconds>", "stop waiting for replies after this long (exit code 5)", secondsOption)
    .option("--file <path>", "send the bytes of this file as the payload")
    .option(
      "--json",
      'print {"id", "timedOut", "replies": [{"sender", "path", "host", "text", "data"}]} (data: base64; host: agents)',
    )
    .option("--id <id>", "topology (tools only; default the only active one)")
    .action(send);
}

async function send(words: string[], opts: SendOptions, c: Command): Promise<void> {
  const payload = opts.file
    ? new Uint8Array(readFileSync(opts.file))
    : new TextEncoder().encode(words.join(" "));
  const toAgents = checkedCondition(opts.condition).kind === "agents";
  let want = opts.waitReplies ?? 0;
  const timeoutMs = opts.timeout ?? 30_000;
  let result: SendResult;
  if (inTask()) {
    result = await asCli(() =>
      connectTask().cmd.send(payload, { condition: opts.condition, waitReplies: want, timeoutMs })
    );
  } else {
    const { sendAsTool } = await import("../cmd_tool.ts");
    ({ result, want } = await sendAsTool(payload, want, {
      ...opts,
      session: c.optsWithGlobals<{ session: string }>().session,
      timeoutMs,
      toAgents,
    }));
  }
  printReplies(result, opts.json);
  if (result.timedOut) {
    throw new DeadlineError(
      `Got ${result.replies.length} of ${want} replies within ${timeoutMs / 1000} s`,
    );
  }
}

function printReplies(result: SendResult, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${
      JSON.stringify({
        id: result.id,
        timedOut: result.timedOut,
        replies: result.replies.map((r) => {
          const t = textOf(r.payload);
          return {
            sender: r.sender,
            path: r.path,
            ...(r.host !== undefined ? { host: r.host } : {}),
            ...(t !== undefined ? { text: t } : {}),
            data: Buffer.from(r.payload).toString("base64"),
          };
        }),
      })
    }\n`);
    return;
  }
  for (const r of result.replies) {
    const body = textOf(r.payload) ?? Buffer.from(r.payload).toString("base64");
    // A multi-line reply (a log, a handler's report) starts on its own line.
    const multi = body.replace(/\n$/, "").includes("\n");
    process.stdout.write(`${senderLabel(r)}:${multi ? "\n" : " "}${body.replace(/\n$/, "")}\n`);
  }
}

function registerRecv(cmd: Command): void {
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
    .action(recv);
}

async function recv(opts: RecvOptions, c: Command): Promise<void> {
  const stop = untilStopped(opts.timeout);
  let n = 0;
  try {
    if (inTask()) n = await recvInTask(opts, stop.signal);
    else {
      const { recvAsTool } = await import("../cmd_tool.ts");
      n = await recvAsTool(opts, c.optsWithGlobals<{ session: string }>().session, stop.signal);
    }
  } finally {
    stop.dispose();
  }
  if (opts.count > 0 && n < opts.count && opts.timeout !== undefined) {
    throw new DeadlineError(
      `Received ${n} of ${opts.count} command(s) within ${opts.timeout / 1000} s`,
    );
  }
}

/** Prints the commands sent to this task (and its topology's task-done events with `--events`); how many. */
async function recvInTask(opts: RecvOptions, signal: AbortSignal): Promise<number> {
  const task = connectTask();
  let n = 0;
  await asCli(async () => {
    // Replies go out while the next commands are read (the client coalesces them); a failed one
    // ends the loop, and every reply is settled before this returns.
    const replying = new Set<Promise<void>>();
    let replyError: unknown;
    const items = task.cmd.listen({
      signal,
      ...(opts.events ? { events: true } : {}),
      ...(opts.count > 0 && !opts.events ? { max: opts.count } : {}),
    });
    for await (const item of items) {
      if (item.type === "task:done") {
        process.stdout.write(
          `${opts.json ? JSON.stringify(item) : `task:done ${item.path} ${item.code ?? item.signal}`}\n`,
        );
        if (opts.count > 0 && ++n >= opts.count) break;
        continue;
      }
      printReceived(item, opts.json);
      if (opts.reply !== undefined) {
        const p: Promise<void> = task.cmd.reply(item.id, opts.reply)
          .catch((err) => void (replyError ??= err))
          .finally(() => replying.delete(p));
        replying.add(p);
        if (replying.size >= 1024) await Promise.race(replying);
        if (replyError !== undefined) throw replyError;
      }
      if (opts.count > 0 && ++n >= opts.count) break;
    }
    await Promise.all(replying);
    if (replyError !== undefined) throw replyError;
  });
  return n;
}

function printReceived(c: ReceivedCommand, json: boolean | undefined): void {
  if (json) {
    const { payload, ...rest } = c;
    process.stdout.write(`${JSON.stringify({ ...rest, data: Buffer.from(payload).toString("base64") })}\n`);
  } else process.stdout.write(`${c.text ?? Buffer.from(c.payload).toString("base64")}\n`);
}

/**
 * `shoal cmd send|recv` as a tool, outside a task: a light peer in the session's mesh sends through an agent,
 * or hears the commands meant for tools.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import {
  CMD_PROTOCOL,
  CmdResponseSchema,
  listenAsTool,
  matchesAgent,
  type ToolListener,
} from "../agent/mod.ts";
import { activeRecord, type CommanderInit, fetchMembers } from "../commander/mod.ts";
import { request } from "../mesh/mod.ts";
import { connectCommander } from "./commander.ts";
import { CliError, ExitCode } from "./errors.ts";
import { textOf } from "./payload_text.ts";
import { openSession } from "./session.ts";

/** Options of `shoal cmd recv`. */
export interface RecvOptions {
  count: number;
  timeout?: number;
  reply?: string;
  events?: boolean;
  json?: boolean;
  id?: string;
}

/** What `shoal cmd send` gathered. */
export interface SendResult {
  id: string;
  timedOut: boolean;
  replies: { sender: string; path: string; host?: string; payload: Uint8Array }[];
}

/** Alive agents that `condition` (addressing agents) reaches, as the agent asked knows them. */
async function agentsMatching(init: CommanderInit, condition: string): Promise<number> {
  const members = await fetchMembers(init);
  return members.filter((m) => m.state === "alive" && matchesAgent(condition, { peerId: m.id, host: m.host }))
    .length;
}

/**
 * `shoal cmd send` as a tool: routes `payload` through an agent and waits for `want` replies (for agents
 * with no --wait-replies: as many as match); returns how many it waited for and what came.
 */
export async function sendAsTool(
  payload: Uint8Array,
  want: number,
  opts: {
    session: string;
    condition: string;
    toAgents: boolean;
    timeoutMs: number;
    waitReplies?: number;
    id?: string;
  },
): Promise<{ want: number; result: SendResult }> {
  await using cc = await connectCommander(await openSession(opts.session));
  // Agents answer whether or not a topology is active: a command to them carries none.
  const topologyId = opts.toAgents ? "" : (await activeRecord(cc.init, opts.id)).id;
  if (opts.toAgents && opts.waitReplies === undefined) {
    want = await agentsMatching(cc.init, opts.condition);
    if (want === 0) {
      throw new CliError(
        `No alive agent matches condition "${opts.condition}"; \`shoal info\` lists agents' peer IDs and hosts`,
      );
    }
  }
  const r = await request(cc.peer.node, cc.peer.agent, CMD_PROTOCOL, {
    topologyId,
    condition: opts.condition,
    payload,
    waitReplies: want,
    timeoutMs: opts.timeoutMs,
  }, { schema: CmdResponseSchema, timeoutMs: opts.timeoutMs + 10_000, maxBytes: 256 * 1024 * 1024 });
  return {
    want,
    result: {
      id: r.id,
      timedOut: r.timedOut,
      replies: r.replies.map((x) => ({
        sender: x.sender.id,
        path: x.sender.path,
        ...(x.sender.host !== undefined ? { host: x.sender.host } : {}),
        payload: x.payload,
      })),
    },
  };
}

/** `shoal cmd recv` outside a task: a light peer hears commands for tools (condition empty or `tool`). */
export async function recvAsTool(opts: RecvOptions, session: string, signal: AbortSignal): Promise<number> {
  if (opts.events) {
    throw new CliError(
      "--events is for tasks; tools see task ends with `shoal monitor --json`",
      ExitCode.usage,
    );
  }
  await using cc = await connectCommander(await openSession(session));
  const topologyId = opts.id ?? (await activeRecord(cc.init)).id;
  const node = cc.peer.node;
  const replies: Promise<void>[] = [];
  let n = 0;
  const encoder = new TextEncoder();
  const listener = await new Promise<ToolListener>((resolve) => {
    const l: ToolListener = listenAsTool(node, topologyId, (cmd) => {
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
        replies.push(
          l.reply(cmd, encoder.encode(opts.reply)).catch((err) => {
            process.stderr.write(
              `shoal: the reply to command ${cmd.id} was not sent: ${(err as Error).message}\n`,
            );
          }),
        );
      }
      if (opts.count > 0 && ++n >= opts.count) resolve(l);
    });
    signal.addEventListener("abort", () => resolve(l), { once: true });
  });
  await Promise.all(replies);
  await listener.close();
  return n;
}

/**
 * Custom commands addressed to an agent itself (condition `agent` or `agent:<peer ID or host>`), as DDS's
 * `dds-agent-cmd`. The first word of the payload picks a built-in verb:
 *
 * - `ping` → `pong from agent <peer ID> on <host>`
 * - `status` → JSON: peer ID, host, version, uptime, slots, running tasks per topology, members seen
 * - `getlog [N]` → the last N (default 100) lines of the agent's log file
 *
 * Anything else goes to the agent's command handler (`shoal agent --command-handler FILE`): the payload on
 * its stdin, its stdout as the reply; a failure is a reply starting with `error:`. Without a handler, the
 * reply is an `error:` naming the built-in verbs. No command, however it fails, stops the agent.
 *
 * @module
 */
import type { Member } from "../../mesh/mod.ts";
import { type CommandHandler, createCommandHandler, type HandlerOutcome } from "./_command_handler.ts";
import { tailLines } from "../runner/mod.ts";
import type { Command, CustomCommands } from "./custom_commands.ts";
import type { Logger } from "../log.ts";
import type { TaskStatus } from "../wire/mod.ts";

/** The built-in verbs. */
export const AGENT_VERBS: readonly string[] = ["ping", "status", "getlog"];

/** Lines `getlog` returns when not told. */
export const DEFAULT_LOG_LINES = 100;
const MAX_LOG_LINES = 100_000;
/** Replies stay well under the 1 MiB payload limit. */
const MAX_REPLY_BYTES = 1024 * 1024 - 1024;

/** What `status` answers. */
export interface AgentStatus {
  peerId: string;
  host: string;
  version: string;
  group?: string;
  labels?: Record<string, string>;
  gpus?: number;
  pid: number;
  startedAt: string;
  uptimeS: number;
  load: number;
  slots: { total: number; free: number };
  /** Running tasks, in all and per topology ID. */
  tasks: { running: number; byTopology: Record<string, number> };
  /** Connected peers (agents and tools). */
  peers: number;
  /** Members of this agent's membership view, by state. */
  members: Record<string, number>;
  /** Membership links and protocol messages sent/received since start. */
  swim?: {
    links: number;
    /** Direct-probe timeout now: it grows with slow acks and poor local health. */
    probeTimeoutMs: number;
    sent: number;
    received: number;
    connections: { opened: number; closed: number; dialled: number };
  };
  logFile: string | null;
  commandHandler: string | null;
}

/** The parts of an agent that `status` reads. */
export interface StatusSources {
  peerId: string;
  host: string;
  version: string;
  group?: string;
  labels?: Record<string, string>;
  gpus?: number;
  startedAt: number;
  load: () => number;
  slots: { total: number; free: number };
  tasks: () => TaskStatus[];
  members: () => Member[];
  peers: () => number;
  /** Membership links and protocol messages sent/received since start. */
  swim?: () => AgentStatus["swim"];
  logFile?: string;
  commandHandler?: string;
}

/** Builds the `status` answer. */
export function agentStatus(s: StatusSources): AgentStatus {
  const byTopology: Record<string, number> = {};
  let running = 0;
  for (const t of s.tasks()) {
    if (t.state !== "running") continue;
    running++;
    byTopology[t.topologyId] = (byTopology[t.topologyId] ?? 0) + 1;
  }
  const members: Record<string, number> = {};
  for (const m of s.members()) members[m.state] = (members[m.state] ?? 0) + 1;
  return {
    peerId: s.peerId,
    host: s.host,
    version: s.version,
    ...(s.group ? { group: s.group } : {}),
    ...(s.labels && Object.keys(s.labels).length ? { labels: s.labels } : {}),
    ...(s.gpus ? { gpus: s.gpus } : {}),
    pid: process.pid,
    startedAt: new Date(s.startedAt).toISOString(),
    uptimeS: Math.round((Date.now() - s.startedAt) / 1000),
    load: s.load(),
    slots: { total: s.slots.total, free: s.slots.free },
    tasks: { running, byTopology },
    peers: s.peers(),
    members,
    ...(s.swim ? { swim: s.swim() } : {}),
    logFile: s.logFile ?? null,
    commandHandler: s.commandHandler ?? null,
  };
}

/** What {@linkcode startAgentCommands} needs. */
export interface AgentCommandsInit {
  commands: CustomCommands;
  log: Logger;
  peerId: string;
  host: string;
  status: () => AgentStatus;
  /** The agent's log file, for `getlog`. */
  logFile?: string;
  /** The command handler executable (absolute path). */
  handler?: string;
  /** Longest handler run (default 30 s). */
  handlerTimeoutMs?: number;
}

/** Answers the commands addressed to this agent; `close()` stops (killing running handlers). */
export interface AgentCommands {
  close(): void;
}

const encoder = new TextEncoder();

function firstWords(payload: Uint8Array): string[] | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(payload).trim().split(/\s+/);
  } catch {
    return undefined; // a binary payload: only a handler can make sense of it
  }
}

/** Starts answering the commands `init.commands` routes to this agent. */
export function startAgentCommands(init: AgentCommandsInit): AgentCommands {
  const { commands, log, peerId, host } = init;
  const self = { id: `agent:${peerId}`, path: "", host };
  const handler: CommandHandler | undefined = init.handler
    ? createCommandHandler({
      file: init.handler,
      maxStdoutBytes: MAX_REPLY_BYTES,
      ...(init.handlerTimeoutMs !== undefined ? { timeoutMs: init.handlerTimeoutMs } : {}),
    })
    : undefined;

  const reply = (cmd: Command, text: string | Uint8Array) => {
    try {
      commands.reply(cmd.id, self, typeof text === "string" ? encoder.encode(text) : text);
    } catch (err) {
      log.warn("could not reply to an agent command", { id: cmd.id, reason: (err as Error).message });
    }
  };

  const getlog = async (arg: string | undefined): Promise<string> => {
    if (!init.logFile) return "error: this agent logs to stderr only (no --log-file)";
    const n = arg === undefined ? DEFAULT_LOG_LINES : Number(arg);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LOG_LINES) {
      return `error: getlog takes a line count from 1 to ${MAX_LOG_LINES}, not "${arg}"`;
    }
    try {
      const tail = await tailLines(init.logFile, n, { maxBytes: MAX_REPLY_BYTES });
      return tail.text;
    } catch (err) {
      return `error: cannot read the log file "${init.logFile}": ${(err as Error).message}`;
    }
  };

  const viaHandler = async (cmd: Command, verb: string | undefined): Promise<string | Uint8Array> => {
    if (!handler) {
      const shown = verb === undefined ? "(binary payload)" : `"${verb}"`;
      return `error: unknown agent command ${shown}; built-in: ${
        AGENT_VERBS.join(", ")
      }; add yours with shoal agent --command-handler FILE`;
    }
    const outcome: HandlerOutcome = await handler.run(cmd.payload, {
      SHOAL_COMMAND_SENDER: cmd.sender.id,
      SHOAL_COMMAND_SENDER_PATH: cmd.sender.path,
      SHOAL_COMMAND_ID: cmd.id,
      SHOAL_COMMAND_TOPOLOGY: cmd.topologyId,
      SHOAL_AGENT_ID: peerId,
      SHOAL_AGENT_HOST: host,
    });
    if (outcome.ok) {
      if (outcome.truncated) {
        log.warn("command handler output cut to the reply limit", { id: cmd.id, bytes: MAX_REPLY_BYTES });
      }
      return outcome.stdout;
    }
    log.warn("command handler failed", { id: cmd.id, reason: outcome.reason });
    return `error: ${outcome.reason}${outcome.stderrTail ? `\n${outcome.stderrTail}` : ""}`;
  };

  const answer = async (cmd: Command): Promise<string | Uint8Array> => {
    const words = firstWords(cmd.payload);
    const verb = words?.[0];
    log.info("agent command", { id: cmd.id, from: cmd.sender.id, verb: verb ?? "(binary)" });
    switch (verb) {
      case "ping":
        return `pong from agent ${peerId} on ${host}`;
      case "status":
        return JSON.stringify(init.status());
      case "getlog":
        return await getlog(words?.[1]);
      default:
        return await viaHandler(cmd, verb);
    }
  };

  const off = commands.toAgent.on((cmd) => {
    void answer(cmd).catch((err) => `error: ${(err as Error).message}`).then((r) => reply(cmd, r));
  });
  return {
    close() {
      off();
      handler?.close();
    },
  };
}

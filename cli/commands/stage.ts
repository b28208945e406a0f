/**
 * `shoal stage put|ls|rm`: data staging. `put` hashes a local file or tree into 1 MiB chunks, seeds them,
 * and the chosen agents pull from each other (a swarm) into their content caches; tasks find the result
 * at `$SHOAL_STAGE/<name>`.
 *
 * @module
 */
import type { Command } from "commander";
import cliProgress from "cli-progress";
import { fetchMembers } from "../../commander/mod.ts";
import type { Member } from "../../mesh/mod.ts";
import {
  type AgentPut,
  buildManifest,
  findHolders,
  type Staged,
  StageInputError,
  stageList,
  stagePut,
} from "../../stage/mod.ts";
import { connectCommander } from "../commander.ts";
import { CliError, ExitCode } from "../errors.ts";
import { duration, printJson, shortId, table } from "../format.ts";
import { bytesOption } from "../options.ts";
import { warnPartial } from "../partial.ts";
import { openSession } from "../session.ts";

/** "256.0 MiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(1)} ${units[i]}`;
}

/** Alive agents whose peer ID or host matches `pattern` (a regex; empty = all). */
function chooseAgents(members: Member[], pattern: string | undefined): Member[] {
  let re: RegExp;
  try {
    re = new RegExp(pattern ?? "");
  } catch (err) {
    throw new CliError(`Invalid --to pattern "${pattern}": ${(err as Error).message}`, ExitCode.usage);
  }
  const alive = members.filter((m) => m.state === "alive");
  const chosen = alive.filter((m) => re.test(m.id) || re.test(m.host));
  if (chosen.length === 0) {
    throw new CliError(
      pattern
        ? `No alive agent's peer ID or host matches --to "${pattern}" (${alive.length} alive; see \`shoal info\`)`
        : "No agent is alive in the session; start some with `shoal up`",
      ExitCode.failure,
    );
  }
  return chosen;
}

function startBar(name: string, quiet: boolean) {
  if (quiet || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    format:
      `Staging ${name} [{bar}] {percentage}% | {held} of {all} | {rate} | {done}/{agents} agents | {duration_formatted}`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  const started = performance.now();
  let begun = false;
  return {
    update(p: { bytes: number; total: number; done: number; agents: number }) {
      const s = (performance.now() - started) / 1000;
      const payload = {
        held: formatBytes(p.bytes),
        all: formatBytes(p.total),
        rate: `${(p.bytes / 1e6 / Math.max(s, 0.001)).toFixed(1)} MB/s`,
        done: p.done,
        agents: p.agents,
      };
      if (!begun) {
        bar.start(Math.max(p.total, 1), p.bytes, payload);
        begun = true;
      } else bar.update(p.bytes, payload);
    },
    stop: () => begun && bar.stop(),
  };
}

interface PutOptions {
  name?: string;
  to?: string;
  rate?: number;
  json?: boolean;
  oneAtATime?: boolean;
}

/** Registers `shoal stage`. */
export function registerStage(program: Command): void {
  const stage = program.command("stage")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal stage put ./calib.root                     every agent gets $SHOAL_STAGE/calib.root
  $ shoal stage put ./inputs --name run42 --to 'node1[0-9]'
  $ shoal stage ls
  $ shoal stage rm run42

Tasks find staged data at $SHOAL_STAGE/<name> (a file, or a directory tree), hard-linked from the agent's
content cache; staged files are read-only. A task that names $SHOAL_STAGE/<name> in its exe or env, or a DDS
asset whose value is exactly $SHOAL_STAGE/<name>, declares it: an agent that lacks it pulls it from the
agents holding it before starting the task, and activation is refused when no agent holds it. Each agent keeps at most --stage-cache-max bytes of staged data
(shoal agent; default 16GiB) and evicts the least recently used names beyond it.`,
    );

  stage.command("put")
    .description("Stage a file or directory on agents: content-addressed, verified, resumable")
    .argument("<path>", "a file or a directory (symbolic links inside are refused)")
    .option("--name <name>", "the name tasks see under $SHOAL_STAGE (default: the path's base name)")
    .option(
      "--to <pattern>",
      "only agents whose peer ID or host matches this regex (default: every alive agent)",
    )
    .option(
      "--rate <bytes/s>",
      "limit what this command sends itself, e.g. 50M (default: no limit)",
      bytesOption,
    )
    .option(
      "--one-at-a-time",
      "no swarm: send to one agent after the other from this host alone, as a lease ships bytes (to compare)",
    )
    .option(
      "--json",
      "print {name, manifest, bytes, files, elapsedMs, agents: [{agent, host, ok, ms, fetched, from, corrupt, path, error}]}",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ shoal stage put ./calib.root --name calib
  $ shoal stage put ./dataset --to 'node0[1-4]' --json | jq '.agents[].ms'
  $ shoal stage put ./big.bin --rate 100M              this host sends at most 100 MiB/s; agents share the rest

The command seeds: agents ask it only for chunks no other agent holds yet, so each chunk leaves it about
once. Every chunk is verified (SHA-256) before it is written, once, into the agent's cache. Interrupted
(Ctrl-C, a lost agent), what arrived is kept: the same put again fetches only the rest, and agents that
can get the rest from each other finish on their own.
Exit codes: 0 staged everywhere, 1 some agent failed (named on stderr), 2 bad usage, 130 interrupted.`,
    )
    .action(async (path: string, opts: PutOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const local = await buildManifest(path, opts.name ? { name: opts.name } : {}).catch((err) => {
        throw err instanceof StageInputError
          ? new CliError(err.message, ExitCode.usage, { cause: err })
          : err;
      });
      await using c = await connectCommander(await openSession(name));
      const members = await fetchMembers(c.init);
      const targets = chooseAgents(members, opts.to);
      // Agents that hold it already (a put to more agents, or an interrupted one) are sources too.
      const others = members.filter((m) => m.state === "alive" && !targets.includes(m));
      const holders = others.length ? await findHolders(c.peer.node, others, local.id) : [];
      const stop = new AbortController();
      process.once("SIGINT", () => {
        process.exitCode = ExitCode.interrupted;
        stop.abort(new Error("interrupted"));
      });
      const bar = startBar(local.manifest.name, opts.json ?? false);
      const started = performance.now();
      const { agents, seed } = await stagePut(c.peer.node, local, {
        targets: targets.map((t) => ({ id: t.id, host: t.host })),
        holders: opts.oneAtATime ? [] : holders,
        ...(opts.oneAtATime ? { oneAtATime: true } : {}),
        onProgress: (p) => bar.update(p),
        signal: stop.signal,
        ...(opts.rate ? { rateBytesPerSec: opts.rate } : {}),
      });
      bar.stop();
      const elapsedMs = Math.round(performance.now() - started);
      const failed = agents.filter((a): a is Extract<AgentPut, { ok: false }> => !a.ok);
      const rows = agents.map((a) =>
        a.ok
          ? {
            agent: a.agent,
            host: a.host,
            ok: true,
            ms: a.result.ms,
            fetched: a.result.fetched,
            fromSeed: a.result.from[c.peer.node.peerId] ?? 0,
            fromPeers: a.result.fetched - (a.result.from[c.peer.node.peerId] ?? 0),
            corrupt: a.result.corrupt,
            from: a.result.from,
            path: a.result.path,
          }
          : { agent: a.agent, host: a.host, ok: false, error: a.error }
      );
      if (opts.json) {
        printJson({
          name: local.manifest.name,
          manifest: local.id,
          kind: local.manifest.kind,
          bytes: local.bytes,
          files: local.manifest.files.length,
          elapsedMs,
          seed,
          agents: rows,
        });
      } else {
        const total = local.bytes * (agents.length - failed.length);
        const fetched = rows.reduce((n, r) => n + (r.fetched ?? 0), 0);
        if (fetched === 0 && failed.length === 0) {
          process.stdout.write(
            `"${local.manifest.name}" (${
              formatBytes(local.bytes)
            }) was already staged on all ${agents.length} agent(s)\n`,
          );
          return;
        }
        process.stdout.write(
          `Staged "${local.manifest.name}" (${
            formatBytes(local.bytes)
          }, ${local.manifest.files.length} file(s)) on ${
            agents.length - failed.length
          } of ${agents.length} agent(s) in ${(elapsedMs / 1000).toFixed(1)} s: ${
            (total / 1e6 / Math.max(elapsedMs / 1000, 0.001)).toFixed(1)
          } MB/s in all; this host sent ${formatBytes(seed.bytes)}\n\n`,
        );
        process.stdout.write(
          table(
            ["AGENT", "HOST", "TIME", "FETCHED", "FROM PEERS", "CORRUPT", "PATH"],
            rows.map((r) =>
              r.ok
                ? [
                  shortId(r.agent),
                  r.host,
                  `${((r.ms ?? 0) / 1000).toFixed(2)}s`,
                  formatBytes(r.fetched ?? 0),
                  formatBytes(r.fromPeers ?? 0),
                  r.corrupt ?? 0,
                  r.path ?? "",
                ]
                : [shortId(r.agent), r.host, "-", "-", "-", "-", "failed"]
            ),
          ) + "\n",
        );
      }
      for (const f of failed) {
        process.stderr.write(`shoal: ${f.host} (${f.agent}): ${f.error.message}\n`);
      }
      if (stop.signal.aborted) process.exitCode = ExitCode.interrupted;
      else if (failed.length) process.exitCode = ExitCode.failure;
    });

  stage.command("ls")
    .description("List staged names: size, files, on how many agents complete or partial, last use")
    .option("--to <pattern>", "only agents whose peer ID or host matches this regex")
    .option(
      "--json",
      "print {agents: [{agent, host, dir, cacheBytes, cacheMax, staged: [{name, bytes, complete, …}]}]}",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ shoal stage ls
  $ shoal stage ls --json | jq '.agents[] | {host, cacheBytes}'`,
    )
    .action(async (opts: { to?: string; json?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      await using c = await connectCommander(await openSession(name));
      const targets = chooseAgents(await fetchMembers(c.init), opts.to);
      const { answers, silent } = await stageList(c.peer.node, targets);
      if (opts.json) printJson({ agents: answers, ...(silent.length ? { unreachable: silent } : {}) });
      else {
        const byName = new Map<string, { s: Staged; complete: number; partial: number; usedAt: number }>();
        for (const a of answers) {
          for (const s of a.staged) {
            const row = byName.get(s.name) ?? { s, complete: 0, partial: 0, usedAt: 0 };
            if (s.complete) row.complete++;
            else row.partial++;
            row.usedAt = Math.max(row.usedAt, s.usedAt);
            byName.set(s.name, row);
          }
        }
        const now = Date.now();
        process.stdout.write(
          table(
            ["NAME", "KIND", "SIZE", "FILES", "COMPLETE ON", "PARTIAL ON", "LAST USED"],
            [...byName.values()].map((r) => [
              r.s.name,
              r.s.kind,
              formatBytes(r.s.bytes),
              r.s.files,
              `${r.complete}/${answers.length}`,
              r.partial,
              `${duration(now - r.usedAt)} ago`,
            ]),
          ) + "\n",
        );
      }
      warnPartial(silent, "the list above is partial");
    });

  stage.command("rm")
    .description("Remove a staged name from agents (their cache keeps contents other names still use)")
    .argument("<name>", "the staged name")
    .option("--to <pattern>", "only agents whose peer ID or host matches this regex")
    .option("--json", "print {name, removedFrom, agents}")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal stage rm calib
  $ shoal stage rm run42 --to node07`,
    )
    .action(async (stagedName: string, opts: { to?: string; json?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      await using c = await connectCommander(await openSession(name));
      const targets = chooseAgents(await fetchMembers(c.init), opts.to);
      const { answers, silent } = await stageList(c.peer.node, targets, { remove: stagedName });
      const removed = answers.filter((a) => a.removed).length;
      if (opts.json) {
        printJson({ name: stagedName, removedFrom: removed, agents: answers.length });
      } else {
        process.stdout.write(`Removed "${stagedName}" from ${removed} of ${answers.length} agent(s)\n`);
      }
      warnPartial(silent, "it may still be staged elsewhere");
      if (removed === 0 && silent.length === 0) {
        throw new CliError(
          `Nothing is staged as "${stagedName}" on the chosen agents; see \`shoal stage ls\``,
        );
      }
    });
}

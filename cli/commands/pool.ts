/**
 * `shoal pool`: the session's shared pool — the queue of topologies waiting for slots, what each running
 * one holds and has done, the agents by state — and `shoal pool grow`, which adds agents through an RMS
 * plug-in while queued demand exceeds the free slots.
 *
 * @module
 */
import type { Command } from "commander";
import { hostname } from "node:os";
import type { Member } from "../../mesh/mod.ts";
import {
  cancelQueued,
  DEFAULT_IDLE_TIMEOUT_MS,
  fetchPool,
  HEALTH_LABEL,
  IDLE_TIMEOUT_LABEL,
  pilotsToSubmit,
  PoolError,
  type PoolView,
} from "../../pool/mod.ts";
import { getRms, RMS_NAMES } from "../../rms/mod.ts";
import { connectCommander } from "../commander.ts";
import { CliError, ExitCode } from "../errors.ts";
import { duration, printJson, shortId, table } from "../format.ts";
import { intOption, secondsFlag } from "../options.ts";
import { openSession } from "../session.ts";
import { submitAgents } from "../agents_submit.ts";
import { agentHealthOptions, healthOf } from "../health_options.ts";

/** Label naming the `shoal pool grow` run that started an agent. */
const GROWN_BY_LABEL = "shoal.grown-by";

/** An agent's state in the pool. */
function agentState(m: Member): "idle" | "busy" | "full" | "unhealthy" | "suspect" | "gone" {
  if (m.state === "dead" || m.state === "left") return "gone";
  if (m.state === "suspect") return "suspect";
  if (m.labels[HEALTH_LABEL]) return "unhealthy";
  if (m.slots.free >= m.slots.total) return "idle";
  return m.slots.free === 0 ? "full" : "busy";
}

/** The pool as `shoal pool --json` prints it. */
function poolJson(view: PoolView) {
  const progress = new Map(view.progress.map((p) => [p.id, p]));
  const order = new Map(view.order.map((o) => [o.id, o]));
  const byState: Record<
    string,
    { id: string; host: string; free: number; total: number; reason?: string }[]
  > = {};
  for (const m of view.members) {
    (byState[agentState(m)] ??= []).push({
      id: m.id,
      host: m.host,
      free: m.slots.free,
      total: m.slots.total,
      ...(m.labels[HEALTH_LABEL] ? { reason: m.labels[HEALTH_LABEL] } : {}),
    });
  }
  const sorted = [...view.entries].sort((a, b) => b.updatedAt - a.updatedAt);
  return {
    scheduler: view.scheduler,
    queue: view.entries.filter((e) => e.state === "queued")
      .map((e) => ({
        id: e.id,
        priority: e.priority,
        share: e.share,
        demand: e.tasks,
        queuedAt: e.queuedAt,
        position: order.get(e.id)?.position ?? null,
        waiting: order.get(e.id)?.waiting ?? e.reason ?? "",
      }))
      .sort((a, b) => (a.position ?? 1e9) - (b.position ?? 1e9)),
    running: view.entries.filter((e) => e.state === "running" || e.state === "starting").map((e) => {
      const p = progress.get(e.id);
      return {
        id: e.id,
        state: e.state,
        priority: e.priority,
        share: e.share,
        demand: e.tasks,
        agents: p?.agents ?? 0,
        slots: p?.slots ?? 0,
        done: p?.done ?? 0,
        all: p?.all ?? e.tasks,
        startedAt: e.startedAt ?? null,
      };
    }),
    finished: sorted.filter((e) => e.state === "done" || e.state === "cancelled").slice(0, 20).map((e) => ({
      id: e.id,
      state: e.state,
      priority: e.priority,
      queuedAt: e.queuedAt,
      startedAt: e.startedAt ?? null,
      endedAt: e.endedAt ?? null,
      ...(e.reason ? { reason: e.reason } : {}),
    })),
    agents: byState,
  };
}

function printPool(name: string, view: PoolView): void {
  const j = poolJson(view);
  const alive = view.members.filter((m) => m.state === "alive");
  const free = alive.reduce((n, m) => n + m.slots.free, 0);
  const total = alive.reduce((n, m) => n + m.slots.total, 0);
  const out: string[] = [
    `Pool of session "${name}": ${alive.length} agent(s), ${free}/${total} slots free; scheduler ${
      shortId(j.scheduler)
    }`,
  ];
  out.push("", `Queue: ${j.queue.length} topology(ies)`);
  if (j.queue.length) {
    out.push(table(
      ["POS", "TOPOLOGY", "PRIORITY", "SHARE", "DEMAND", "QUEUED", "WAITING"],
      j.queue.map((q) => [
        q.position ?? "?",
        q.id,
        q.priority,
        q.share,
        q.demand,
        `${duration(Date.now() - q.queuedAt)} ago`,
        q.waiting,
      ]),
    ));
  }
  out.push("", `Running: ${j.running.length} topology(ies)`);
  if (j.running.length) {
    out.push(table(
      ["TOPOLOGY", "PRIORITY", "SHARE", "AGENTS", "SLOTS", "DONE/ALL", "SINCE"],
      j.running.map((r) => [
        r.id,
        r.priority,
        r.share,
        r.agents,
        r.slots,
        `${r.done}/${r.all}`,
        r.startedAt ? duration(Date.now() - r.startedAt) : "starting",
      ]),
    ));
  }
  const states = ["idle", "busy", "full", "unhealthy", "suspect", "gone"] as const;
  out.push("", `Agents: ${states.map((s) => `${j.agents[s]?.length ?? 0} ${s}`).join(", ")}`);
  for (const a of j.agents.unhealthy ?? []) {
    out.push(`  ${shortId(a.id)} (${a.host}) takes no leases: ${a.reason}`);
  }
  process.stdout.write(out.join("\n") + "\n");
}

interface GrowOptions {
  rms: string;
  rmsConfig?: string;
  max: number;
  step: number;
  slots: number;
  idleTimeout: number;
  interval: number;
  exitWhenIdle?: boolean;
  json?: boolean;
  minFreeDisk?: number;
  maxLoad?: number;
}

/** Registers `shoal pool`. */
export function registerPool(program: Command): void {
  const pool = program.command("pool")
    .addHelpText(
      "after",
      `
Topologies join the queue with \`shoal topology activate FILE --queue [--priority P]\`. The scheduler (the
alive agent with the lowest peer ID) starts them whole as slots free up: higher priority first, equal
priorities round-robin over their --share groups, first come first served within one; nothing overtakes
the head of the queue. The queue is replicated on every agent and survives the peer that queued. Every
10 s the scheduler writes a line per topology to its agent.log (the agent's data dir, e.g.
~/.shoal/sessions/default/agents/*/agent.log): "pool topology=b1 agents=2 slots=8 done=12 all=20".

Examples:
  $ shoal pool                                   queue, running topologies, agents
  $ shoal pool --json | jq '.queue[].id'
  $ shoal pool cancel run42                      take a topology out of the queue
  $ shoal pool grow --rms slurm -c slurm.json --max 20 --step 4 --slots 8`,
    );

  pool.command("status", { isDefault: true })
    .description("Show the queue (position, priority, demand, why it waits), running topologies, agents")
    .option(
      "--json",
      "print {scheduler, queue: [...], running: [...], finished: [...], agents: {idle: [...], ...}}",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ shoal pool
  $ shoal pool status --json | jq '.running[] | {id, done, all}'`,
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      await using c = await connectCommander(await openSession(name));
      const view = await fetchPool(c.init);
      if (opts.json) printJson({ session: name, ...poolJson(view) });
      else printPool(name, view);
    });

  pool.command("cancel")
    .description(
      "Take a queued topology out of the queue (a started one is stopped with `shoal topology stop`)",
    )
    .argument("<id>", "topology ID")
    .option("--json", "print the cancelled entry")
    .addHelpText("after", "\nExamples:\n  $ shoal pool cancel run42")
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      await using c = await connectCommander(await openSession(name));
      const e = await asCli(() => cancelQueued(c.init, id));
      if (opts.json) printJson({ id: e.id, state: e.state });
      else process.stdout.write(`Cancelled "${e.id}": it left the queue\n`);
    });

  pool.command("grow")
    .description("Add agents through an RMS plug-in while queued demand exceeds free slots; idle ones exit")
    .requiredOption("--rms <name>", `plug-in that starts the agents (${RMS_NAMES.join(", ")})`)
    .option("-c, --rms-config <file>", "plug-in config (ssh host list, Slurm options…), as for shoal submit")
    .requiredOption("--max <n>", "most agents grown at once, pending ones included", intOption(1))
    .option("--step <n>", "most agents per submission", intOption(1), 1)
    .option("-s, --slots <n>", "task slots per grown agent", intOption(1), 1)
    .addOption(
      secondsFlag(
        "--idle-timeout <seconds>",
        "a grown agent holding no lease this long, while nothing is queued, leaves the mesh and exits, ending its job",
        DEFAULT_IDLE_TIMEOUT_MS,
        "as DDS",
      ),
    )
    .addOption(secondsFlag("--interval <seconds>", "how often demand is compared with free slots", 5_000))
    .addOption(agentHealthOptions()[0]!)
    .addOption(agentHealthOptions()[1]!)
    .option("--exit-when-idle", "exit once the queue is empty and every grown agent has exited")
    .option(
      "--json",
      "one JSON line per look at the pool (type look), submission (grow), outcome (grown, failed), " +
        "unreachable mesh (unreachable) and exit with --exit-when-idle (idle)",
    )
    .addHelpText(
      "after",
      `
Runs until interrupted (or, with --exit-when-idle, until the work is done and the pool has shrunk back).
Demand is the slots wanted by queued topologies; free slots are those of alive agents taking leases.
Submissions go one at a time, each of at most --step agents; agents submitted and not yet joined count
against --max, so a slow batch queue is not flooded.

Examples:
  $ shoal pool grow --rms localhost --max 4 --slots 2 --idle-timeout 60
  $ shoal pool grow --rms slurm -c slurm.json --max 50 --step 10 --slots 8
  $ shoal pool grow --rms ssh -c hosts.cfg --max 8 --exit-when-idle --json
  $ shoal pool grow --rms sge -c sge.json --max 16 --slots 4 --min-free-disk 2GB --max-load 8`,
    )
    .action(async (opts: GrowOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      if (opts.idleTimeout <= 0) {
        throw new CliError("--idle-timeout must be more than 0 seconds", ExitCode.usage);
      }
      getRms(opts.rms); // an unknown plug-in is a usage error now, not a failed submission every round
      const session = await openSession(name);
      const tag = `${hostname()}-${process.pid}`;
      const say = (line: Record<string, unknown>, text: string) => {
        if (opts.json) printJson({ at: Date.now(), ...line });
        else process.stdout.write(`${new Date().toISOString()} ${text}\n`);
      };
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      let grewAny = false;
      // Agents a submission returned but the view does not show alive yet (its `via` agent may lag the
      // submitter): they count as pending against --max until seen, or for a minute at most.
      const unseen = new Map<string, number>();
      try {
        while (!stop.signal.aborted) {
          let view: PoolView | undefined;
          try {
            await using c = await connectCommander(session);
            view = await fetchPool(c.init);
          } catch (err) {
            say(
              { type: "unreachable", reason: (err as Error).message },
              `mesh unreachable: ${(err as Error).message}`,
            );
          }
          if (view) {
            const alive = view.members.filter((m) => m.state === "alive");
            const mine = alive.filter((m) => m.labels[GROWN_BY_LABEL] === tag);
            const grown = mine.length;
            for (const m of mine) unseen.delete(m.id);
            for (const [id, until] of unseen) if (until < Date.now()) unseen.delete(id);
            const pending = unseen.size;
            const queued = view.entries.filter((e) => e.state === "queued");
            const demand = queued.reduce((n, e) => n + e.tasks, 0);
            const free = alive.filter((m) => !m.labels[HEALTH_LABEL]).reduce((n, m) => n + m.slots.free, 0);
            const d = pilotsToSubmit({
              demand,
              free,
              slotsPerAgent: opts.slots,
              grown,
              pending,
              max: opts.max,
              step: opts.step,
            });
            if (opts.json) {
              printJson({
                at: Date.now(),
                type: "look",
                demand,
                free,
                grown,
                pending,
                submit: d.submit,
                why: d.why,
              });
            }
            if (opts.exitWhenIdle && grewAny && queued.length === 0 && grown === 0 && pending === 0) {
              say({ type: "idle", grown, demand }, "queue empty and every grown agent gone: exiting");
              break;
            }
            if (d.submit > 0) {
              say(
                { type: "grow", submit: d.submit, demand, free, grown, why: d.why },
                `submitting ${d.submit} agent(s) via ${opts.rms}: ${d.why}`,
              );
              grewAny = true;
              try {
                const out = await submitAgents(session, {
                  rms: opts.rms,
                  agents: d.submit,
                  slots: opts.slots,
                  labels: { [GROWN_BY_LABEL]: tag, [IDLE_TIMEOUT_LABEL]: String(opts.idleTimeout) },
                  timeout: 300_000,
                  quiet: true,
                  ...(opts.rmsConfig ? { configFile: opts.rmsConfig } : {}),
                  ...healthOf(opts),
                });
                for (const j of out.jobs) if (j.peerId) unseen.set(j.peerId, Date.now() + 60_000);
                say(
                  { type: "grown", agents: out.jobs.map((j) => ({ job: j.id, host: j.host, id: j.peerId })) },
                  `${out.jobs.length} agent(s) joined: ${
                    out.jobs.map((j) => `${j.id}@${j.host}`).join(", ")
                  }`,
                );
              } catch (err) {
                if (err instanceof CliError && err.exitCode === ExitCode.usage) throw err;
                say(
                  { type: "failed", reason: (err as Error).message },
                  `submission failed: ${(err as Error).message}`,
                );
              }
              continue; // look again at once: the new agents may already be taking work
            }
          }
          await new Promise<void>((r) => {
            const t = setTimeout(r, opts.interval);
            stop.signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
          });
        }
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      if (stop.signal.aborted) process.exitCode = ExitCode.interrupted;
    });
}

async function asCli<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PoolError) throw new CliError(err.message, ExitCode.failure, { cause: err });
    throw err;
  }
}

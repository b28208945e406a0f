/**
 * `shoal up`: create (or reuse) a session and start its agents.
 *
 * @module
 */
import type { Command } from "commander";
import type { View } from "../../mesh/mod.ts";
import { getRms, RMS_NAMES } from "../../rms/mod.ts";
import { CliError, DeadlineError } from "../errors.ts";
import { printJson } from "../format.ts";
import { connectLightPeer, fetchView } from "../light_peer.ts";
import { intOption, secondsOption } from "../options.ts";
import { startProgress } from "../progress.ts";
import { selfCommand } from "../self_command.ts";
import { openOrCreateSession, type Session } from "../session.ts";
import { agentRows, printAgents } from "./info.ts";

interface UpOptions {
  agents: number;
  slots: number;
  rms: string;
  group?: string;
  timeout: number;
  json?: boolean;
}

/** Starts agents for `session` through an RMS plug-in and waits until all are in the mesh. */
export async function startAgents(
  session: Session,
  opts: { rms: string; agents: number; slots: number; group?: string; timeout: number; json?: boolean },
): Promise<View> {
  const rms = getRms(opts.rms);
  const bar = startProgress("Starting agents", opts.agents, { quiet: opts.json ?? false });
  const signal = AbortSignal.timeout(opts.timeout);
  try {
    const jobs = await rms.submit({
      session: await session.ref(),
      count: opts.agents,
      slots: opts.slots,
      self: selfCommand(),
      signal,
      ...(opts.group ? { group: opts.group } : {}),
    });
    session.record.jobs.push(...jobs);
    await session.save();
    const expected = new Set(jobs.map((j) => j.peerId).filter((p): p is string => !!p));
    await using peer = await connectLightPeer(session, { signal });
    let alive = 0;
    while (!signal.aborted) {
      const view = await fetchView(peer);
      alive = view.members.filter((m) => m.state === "alive" && expected.has(m.id)).length;
      bar.update(alive);
      if (alive >= expected.size) return view;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new DeadlineError(
      `Only ${alive} of ${expected.size} agents joined the mesh within ${opts.timeout / 1000} s; ` +
        `see the agents' logs under ${session.dir}/agents`,
    );
  } finally {
    bar.stop();
  }
}

/** Registers `shoal up`. */
export function registerUp(program: Command): void {
  program.command("up")
    .description("Start a local mesh of agents in a session (created if needed) and wait until they joined")
    .option("-n, --agents <n>", "number of agents", intOption(1), 1)
    .option("-s, --slots <n>", "task slots per agent", intOption(1), 1)
    .option("--rms <name>", `plug-in that starts the agents (${RMS_NAMES.join(", ")})`, "localhost")
    .option("-g, --group <name>", "group name the agents announce")
    .option("--timeout <seconds>", "give up after this long", secondsOption, 30_000)
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal up --agents 3 --slots 2
  $ shoal up --session lab --agents 2 --json`,
    )
    .action(async (opts: UpOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const started = performance.now();
      const session = await openOrCreateSession(name);
      const rms = getRms(opts.rms);
      const live = (await rms.status(session.record.jobs.filter((j) => j.rms === rms.name)))
        .filter((s) => s.state === "running");
      if (live.length > 0) {
        throw new CliError(
          `Session "${name}" is already up with ${live.length} agent(s); stop it with \`shoal down\`, ` +
            `or use another session with \`--session NAME\``,
        );
      }
      session.record.jobs = [];
      await session.save();
      const view = await startAgents(session, { ...opts });
      const elapsedMs = Math.round(performance.now() - started);
      if (opts.json) {
        printJson({ session: name, id: session.record.id, elapsedMs, agents: agentRows(view.members) });
        return;
      }
      const slots = view.members.reduce((n, m) => n + m.slots.total, 0);
      process.stdout.write(
        `Session "${name}" is up: ${view.members.length} agents, ${slots} slots (${
          (elapsedMs / 1000).toFixed(1)
        } s)\n\n`,
      );
      printAgents(view.members);
    });
}

/**
 * `shoal info`: the session's agents as the mesh sees them.
 *
 * @module
 */
import type { Command } from "commander";
import { fetchMembers, fetchTasks, fetchTopologies } from "../../commander/mod.ts";
import type { Member } from "../../mesh/mod.ts";
import { connectCommander } from "../commander.ts";
import { DeadlineError } from "../errors.ts";
import { intOption, secondsFlag } from "../options.ts";
import { duration, printJson } from "../format.ts";
import { warnPartial } from "../partial.ts";
import { openSession } from "../session.ts";
import { agentRows, printAgents } from "../agent_table.ts";
import { prometheusTargets } from "../../metrics/mod.ts";
import { rename, writeFile } from "node:fs/promises";

/** Registers `shoal info`. */
export function registerInfo(program: Command): void {
  program.command("info")
    .option(
      "--json",
      "print JSON: {session, agents: [{id, host, state, slots: {total, free}, ...}], topologies}",
    )
    .option(
      "--wait-slots <n>",
      "wait until the mesh has at least <n> slots in alive agents (DDS dds-info --wait)",
      intOption(1),
    )
    .addOption(secondsFlag("--timeout <seconds>", "deadline for --wait-slots", 60_000))
    .option(
      "--prometheus-sd [file]",
      "print (or write to <file>) Prometheus file_sd JSON: the metrics endpoint of every alive agent",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ shoal info
  $ shoal info --wait-slots 40 --timeout 120
  $ shoal info --session lab --json | jq '.agents[].slots.free'
  $ shoal info --prometheus-sd /etc/prometheus/shoal.json   # for file_sd_configs; agents need --metrics`,
    )
    .action(async (opts: InfoOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const session = await openSession(name);
      await using c = await connectCommander(session);
      const deadline = Date.now() + opts.timeout;
      let members = await fetchMembers(c.init);
      while (opts.waitSlots !== undefined && totalSlots(members) < opts.waitSlots) {
        if (Date.now() > deadline) {
          throw new DeadlineError(
            `Only ${totalSlots(members)} of ${opts.waitSlots} slots joined within ${
              opts.timeout / 1000
            } s; ` +
              "add agents with `shoal submit`",
          );
        }
        await new Promise((r) => setTimeout(r, 200));
        members = await fetchMembers(c.init);
      }
      if (opts.prometheusSd !== undefined) {
        const text = JSON.stringify(prometheusTargets(agentRows(members), name), null, 2) + "\n";
        if (typeof opts.prometheusSd === "string") {
          // Prometheus re-reads the file when it changes: write it whole, then rename over the old one.
          const tmp = `${opts.prometheusSd}.${process.pid}.tmp`;
          await writeFile(tmp, text);
          await rename(tmp, opts.prometheusSd);
        } else process.stdout.write(text);
        return;
      }
      const records = (await fetchTopologies(c.init)).filter((r) => r.state === "active");
      const view = records.length ? await fetchTasks(c.init) : { agents: [], unreachable: [] };
      const tasks = view.agents.flatMap((a) => a.tasks);
      // What each side of a partition says about re-placing: the lowest standing any agent reported.
      const minority = new Map<string, { sees: number; of: number; need: number; since: number }>();
      for (const a of view.agents) {
        for (const m of a.minority ?? []) {
          const had = minority.get(m.topologyId);
          if (!had || m.sees < had.sees) minority.set(m.topologyId, m);
        }
      }
      const topologies = records.map((r) => {
        const states: Record<string, number> = {};
        for (const t of tasks.filter((t) => t.topologyId === r.id)) {
          states[t.state] = (states[t.state] ?? 0) + 1;
        }
        const planned = Object.values(r.placement).reduce((n, l) => n + l.length, 0);
        const m = minority.get(r.id);
        return {
          id: r.id,
          name: r.name,
          file: r.file,
          epoch: r.epoch,
          tasks: planned,
          states,
          since: r.updatedAt,
          placement: r.placement,
          ...(m ? { minority: { sees: m.sees, of: m.of, need: m.need, since: m.since } } : {}),
        };
      });
      if (opts.json) {
        printJson({
          session: name,
          id: session.record.id,
          agents: agentRows(members),
          topologies,
          ...(view.unreachable.length ? { unreachable: view.unreachable } : {}),
        });
        warnPartial(view.unreachable);
        return;
      }
      const alive = members.filter((m) => m.state === "alive");
      const free = alive.reduce((n, m) => n + m.slots.free, 0);
      process.stdout.write(
        `Session "${name}": ${alive.length} agent(s) alive, ${free}/${totalSlots(members)} slots free\n\n`,
      );
      printAgents(members);
      for (const t of topologies) {
        const states = Object.entries(t.states).map(([s, n]) => `${n} ${s}`).join(", ") || "no tasks";
        process.stdout.write(`\nTopology "${t.id}" (${t.file}): ${t.tasks} task(s): ${states}\n`);
        if (t.minority) {
          process.stdout.write(
            `  this side sees ${t.minority.sees} of ${t.minority.of} agents; not re-placing ` +
              `(a strict majority is ${t.minority.need}; since ${duration(Date.now() - t.minority.since)})\n`,
          );
        }
      }
      warnPartial(view.unreachable);
    });
}

interface InfoOptions {
  json?: boolean;
  waitSlots?: number;
  timeout: number;
  prometheusSd?: string | true;
}

function totalSlots(members: Member[]): number {
  return members.filter((m) => m.state === "alive").reduce((n, m) => n + m.slots.total, 0);
}

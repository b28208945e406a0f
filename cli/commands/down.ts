/**
 * `shoal down`: stop a session's agents (SIGTERM, then SIGKILL after a grace period).
 *
 * @module
 */
import type { Command } from "commander";
import { type CancelResult, getRms } from "../../rms/mod.ts";
import { printJson } from "../format.ts";
import { secondsFlag } from "../options.ts";
import { openSession, purgeSession } from "../session.ts";

interface DownOptions {
  grace: number;
  purge?: boolean;
  json?: boolean;
}

/** Registers `shoal down`. */
export function registerDown(program: Command): void {
  program.command("down")
    .addOption(secondsFlag("--grace <seconds>", "time agents get to stop cleanly", 10_000))
    .option("--purge", "also delete the session's directory (swarm key, data dirs, logs)")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal down
  $ shoal down --session lab --grace 2 --purge`,
    )
    .action(async (opts: DownOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const session = await openSession(name);
      const byRms = Map.groupBy(session.record.jobs, (j) => j.rms);
      const results: CancelResult[] = [];
      for (const [rmsName, jobs] of byRms) {
        results.push(...await getRms(rmsName).cancel(jobs, { graceMs: opts.grace }));
      }
      const count = (o: CancelResult["outcome"]) => results.filter((r) => r.outcome === o).length;
      const failed = results.filter((r) => r.outcome === "failed");
      const stopped = new Set(results.filter((r) => r.outcome !== "failed").map((r) => r.id));
      await session.forgetJobs(stopped);
      if (opts.purge && failed.length === 0) await purgeSession(name);
      if (opts.json) {
        printJson({
          session: name,
          stopped: count("terminated") + count("killed"),
          terminated: count("terminated"),
          killed: count("killed"),
          alreadyGone: count("gone"),
          failed: failed.map((f) => ({ id: f.id, detail: f.detail })),
          purged: !!opts.purge && failed.length === 0,
        });
      } else if (results.length === 0) {
        process.stdout.write(`Session "${name}" has no agents to stop\n`);
      } else {
        const parts = [`${count("terminated")} cleanly`];
        if (count("killed")) parts.push(`${count("killed")} killed after ${opts.grace / 1000} s`);
        if (count("gone")) parts.push(`${count("gone")} already gone`);
        process.stdout.write(
          `Stopped ${count("terminated") + count("killed")} agent(s) of session "${name}" (${
            parts.join(", ")
          })\n`,
        );
        for (const f of failed) process.stdout.write(`  could not stop job ${f.id}: ${f.detail}\n`);
      }
      if (failed.length > 0) process.exitCode = 1;
    });
}

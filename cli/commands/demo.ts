/**
 * `shoal demo`: the main job — a local mesh on this machine running the embedded sample topology, as a
 * guided tour of the commands a user would type.
 *
 * @module
 */
import type { Command } from "commander";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CliError, ExitCode } from "../errors.ts";
import { onBrokenPipe } from "../exit_hooks.ts";
import { selfCommand } from "../self_command.ts";
import { DEMO_TOPOLOGY } from "../demo_topology.ts";
import { sessionDir } from "../session.ts";

/** Once set, steps run without output (stdout is gone, or the user pressed Ctrl-C). */
const cutShort = { now: false };

function step(args: string[], env: Record<string, string | undefined>): Promise<number> {
  const self = selfCommand();
  if (!cutShort.now) process.stdout.write(`\n$ shoal ${args.join(" ")}\n`);
  return new Promise((resolve) => {
    const child = spawn(self.command, [...self.args, ...args], {
      stdio: cutShort.now ? "ignore" : "inherit",
      env,
    });
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

/** Registers `shoal demo`. */
export function registerDemo(program: Command): void {
  program.command("demo")
    .option("--agents <n>", "agents to start", "3")
    .option("--slots <n>", "slots per agent", "4")
    .addHelpText(
      "after",
      `
Starts a session (default "demo"), activates a DDS-style topology with producers, pipelines (collections), a
task that crashes twice and is restarted by its trigger, and a monitor; shows tasks, logs and events; then stops
everything. Nothing is left running.

Examples:
  $ shoal demo
  $ shoal demo --session tour --agents 2`,
    )
    .action(async (opts: { agents: string; slots: string }, cmd: Command) => {
      const global = cmd.optsWithGlobals<{ session: string }>();
      const session = global.session === "default" ? "demo" : global.session;
      const env = { ...process.env, SHOAL_SESSION: session };
      const dir = sessionDir(session);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, "demo-topology.xml");
      writeFileSync(file, DEMO_TOPOLOGY);
      // Cut short (Ctrl-C, or stdout closed as in `shoal demo | head`): skip to the clean-up, quietly.
      const giveBack = onBrokenPipe(() => (cutShort.now = true));
      const onSignal = () => (cutShort.now = true);
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      let failed = "";
      const must = async (args: string[]) => {
        if (failed || cutShort.now) return;
        if (await step(args, env) !== 0) failed = `shoal ${args[0]} ${args[1] ?? ""}`.trim();
      };
      await step(["down", "--grace", "2"], env);
      await must(["up", "--agents", opts.agents, "--slots", opts.slots]);
      await must(["topology", "view", file]);
      if (!failed && !cutShort.now) {
        const self = selfCommand();
        process.stdout.write(`\n$ shoal monitor --timeout 4 &   # events, while the topology starts\n`);
        const monitor = spawn(self.command, [...self.args, "monitor", "--timeout", "4"], {
          stdio: "inherit",
          env,
        });
        const monitorDone = new Promise((r) => monitor.on("exit", r));
        await new Promise((r) => setTimeout(r, 700)); // let it join the gossip before tasks start
        await must(["topology", "activate", file]);
        await monitorDone;
      }
      await must(["ps"]);
      await must(["logs", "producer|flaky|sampler"]);
      await must(["info"]);
      await must(["topology", "stop", "--grace", "2"]);
      await step(["down"], env);
      giveBack();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      if (cutShort.now) process.exit(ExitCode.interrupted);
      if (failed) throw new CliError(`The demo stopped: \`${failed}\` failed (see above)`);
      process.stdout.write(
        `\nDone: the session "${session}" ran the sample topology and left nothing running.\n`,
      );
    });
}

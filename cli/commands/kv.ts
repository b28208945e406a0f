/**
 * `shoal kv`: key-value properties. Inside a task (`SHOAL_TASK_TOKEN` set) it talks to the local agent's
 * task API with DDS's access rules; outside (a tool) it reads through any agent of the session
 * (`../kv_tool.ts`, loaded only then: a task's `shoal kv put` loads no mesh stack).
 *
 * @module
 */
import type { Command } from "commander";
import { untilStopped } from "../exit_hooks.ts";
import process from "node:process";
import { connectTask, type KvResult, type TaskClient } from "../../client/mod.ts";
import { CliError, DeadlineError, ExitCode } from "../errors.ts";
import { intOption, secondsOption } from "../options.ts";
import { asCli, inTask } from "../task_helper.ts";

function taskClient(): TaskClient {
  if (!inTask()) {
    throw new CliError(
      "Only a task can write properties (SHOAL_SOCKET and SHOAL_TASK_TOKEN are not set); tools may read with `shoal kv get`",
      ExitCode.usage,
    );
  }
  return connectTask();
}

function printResult(r: KvResult, json: boolean | undefined): void {
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else for (const v of r.values) process.stdout.write(`${v.deleted ? "" : v.value}\n`);
}

interface ReadOptions {
  json?: boolean;
  wait?: boolean;
  waitCount?: number;
  timeout?: number;
  id?: string;
}

interface WatchOptions {
  exact?: boolean;
  from?: string;
  count?: number;
  timeout?: number;
  json?: boolean;
  id?: string;
}

/** Registers `shoal kv`. */
export function registerKv(program: Command): void {
  const kv = program.command("kv")
    .addHelpText(
      "after",
      `
Inside a task (SHOAL_SOCKET and SHOAL_TASK_TOKEN set) the agent applies DDS's rules: a task writes only
properties it declared write/readwrite and reads only those it declared read/readwrite. Outside a task,
\`shoal kv get\` and \`shoal kv watch\` read any property of a topology (--id, default the only active one).

Examples:
  $ shoal kv put TaskIndexProperty "$DDS_TASK_INDEX"
  $ shoal kv get TaskIndexProperty --wait-count 5 --timeout 30 --json
  $ shoal kv watch ReplyProperty --json
  $ shoal kv get TaskIndexProperty --session s1 --id Tutorial1`,
    );

  registerPut(kv);
  registerDel(kv);
  registerGet(kv);
  registerWatch(kv);
}

function registerPut(kv: Command): void {
  kv.command("put")
    .description("Write this task's value of a property")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal kv put TaskIndexProperty "$DDS_TASK_INDEX"
  $ shoal kv put Config "$(cat config.json)" --json`,
    )
    .argument("<key>")
    .argument("<value>")
    .option("--json", "print {key, version}")
    .action(async (key: string, value: string, opts: { json?: boolean }) => {
      const r = await asCli(() => taskClient().kv.put(key, value));
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });
}

function registerDel(kv: Command): void {
  kv.command("del")
    .description("Delete this task's value of a property (leaves a tombstone)")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal kv del TaskIndexProperty`,
    )
    .argument("<key>")
    .option("--json", "print {key, version}")
    .action(async (key: string, opts: { json?: boolean }) => {
      const r = await asCli(() => taskClient().kv.delete(key));
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });
}

function registerGet(kv: Command): void {
  kv.command("get")
    .description("Print every writer's current value of a property, one per line")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal kv get ReplyProperty --wait --timeout 30
  $ shoal kv get TaskIndexProperty --wait-count 10 --json
  $ shoal kv get TaskIndexProperty --session s1 --id Tutorial1     # as a tool`,
    )
    .argument("<key>")
    .option("--wait", "block until a value exists")
    .option("--wait-count <n>", "block until n writers have a value", intOption(1))
    .option("--timeout <seconds>", "give up waiting after this long (exit code 5)", secondsOption)
    .option("--json", 'print {"key", "values": [{"value", "sender", "path", "version"}]}')
    .option("--id <id>", "topology (tools only; default the only active one)")
    .action(get);
}

/** `shoal kv get`: through the task API inside a task, else as a tool. */
async function get(key: string, opts: ReadOptions, cmd: Command): Promise<void> {
  const want = opts.waitCount ?? (opts.wait ? 1 : 0);
  if (inTask()) {
    const r = await asCli(() =>
      connectTask().kv.get(key, {
        ...(want ? { waitCount: want } : {}),
        ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
      })
    );
    return printResult(r, opts.json);
  }
  const { toolGet } = await import("../kv_tool.ts");
  printResult(
    await toolGet(key, want, { ...opts, session: cmd.optsWithGlobals<{ session: string }>().session }),
    opts.json,
  );
}

function registerWatch(kv: Command): void {
  kv.command("watch")
    .description("Print each update of properties as it happens (one line each)")
    .addHelpText(
      "after",
      `
Examples:
  $ shoal kv watch
  $ shoal kv watch ReplyProperty --exact --from 0 --json
  $ shoal kv watch Task --count 5 --timeout 60`,
    )
    .argument("[prefix]", "only keys starting with this", "")
    .option("--exact", "the argument is a whole key, not a prefix")
    .option("--from <version>", "first replay the updates after this version (0: all)")
    .option("--count <n>", "exit after n updates", intOption(1))
    .option(
      "--timeout <seconds>",
      "exit after this long (exit code 5 when --count was not reached)",
      secondsOption,
    )
    .option("--json", 'print {"key", "values": [{"value", "sender", "path", "version"}]} per update')
    .option("--id <id>", "topology (tools only; default the only active one)")
    .action(watch);
}

/** `shoal kv watch`: until `--count` updates, `--timeout`, or SIGINT/SIGTERM. */
async function watch(prefix: string, opts: WatchOptions, cmd: Command): Promise<void> {
  const stop = untilStopped(opts.timeout);
  let seen = 0;
  const print = (r: KvResult) => {
    const v = r.values[0]!;
    if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else process.stdout.write(`${r.key}\t${v.path}\t${v.deleted ? "(deleted)" : v.value}\n`);
    return ++seen >= (opts.count ?? Infinity);
  };
  try {
    if (inTask()) {
      const updates = connectTask().kv.watch({
        ...(opts.exact ? { key: prefix } : { prefix }),
        ...(opts.from !== undefined ? { from: opts.from } : {}),
        signal: stop.signal,
      });
      await asCli(async () => {
        for await (const r of updates) if (print(r)) break;
      });
    } else {
      const { toolWatch } = await import("../kv_tool.ts");
      await toolWatch(prefix, print, {
        ...opts,
        session: cmd.optsWithGlobals<{ session: string }>().session,
        signal: stop.signal,
      });
    }
  } finally {
    stop.dispose();
  }
  if (opts.count !== undefined && seen < opts.count && opts.timeout !== undefined) {
    throw new DeadlineError(`Saw ${seen} of ${opts.count} update(s) within ${opts.timeout / 1000} s`);
  }
}

/**
 * `shoal coll`: collectives among a topology's tasks (barrier, broadcast, gather, allgather, scatter,
 * reduce, allreduce). Inside a task it talks to the local agent's task API; the result goes to stdout. A tool
 * (outside a task) takes part through any agent of the session (`../coll_tool.ts`).
 *
 * @module
 */
import type { Command } from "commander";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import process from "node:process";
import {
  CollectiveFailedError,
  type CollOptions,
  type CollResult,
  connectTask,
  type Reduction,
  TaskApiError,
} from "../../client/mod.ts";
import { CliError, DeadlineError, ExitCode } from "../errors.ts";
import { intOption, secondsOption } from "../options.ts";
import type { CollCliOptions as Opts, ToolCall } from "../coll_tool.ts";
import { asCli, inTask } from "../task_helper.ts";

const REDUCTIONS = ["sum", "min", "max", "concat"];

function value(v: string | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array();
  if (v === "-") return new Uint8Array(readFileSync(0));
  return new TextEncoder().encode(v);
}

const base64 = (d: Uint8Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString("base64");

/** Text where the bytes are UTF-8, else `data` in base64 (for the result and each gathered value). */
function print(r: CollResult, json: boolean | undefined): void {
  if (json) {
    const { data: _d, values, ...rest } = r;
    const out = {
      ...rest,
      ...(r.data && r.text === undefined ? { data: base64(r.data) } : {}),
      ...(values
        ? {
          values: values.map((v) =>
            v.text !== undefined ? { path: v.path, text: v.text } : { path: v.path, data: base64(v.data) }
          ),
        }
        : {}),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  if (r.values) { for (const v of r.values) process.stdout.write(`${v.path}\t${v.text ?? "(binary)"}\n`); }
  else if (r.data) {
    process.stdout.write(r.data);
    if (r.text !== undefined && !r.text.endsWith("\n")) process.stdout.write("\n");
  }
}

/** A tool's part (outside a task), loaded only then: a task's `shoal coll` loads no mesh stack. */
async function asTool(
  name: string,
  call: ToolCall | "observe",
  opts: Opts,
  cmd: Command,
): Promise<CollResult> {
  const { collAsTool } = await import("../coll_tool.ts");
  return await collAsTool(name, call, opts, cmd.optsWithGlobals<{ session: string }>().session);
}

async function run(
  fn: () => Promise<CollResult>,
  opts: Opts,
  tool?: () => Promise<CollResult>,
): Promise<void> {
  if (!inTask()) {
    if (!tool) {
      throw new CliError(
        "Only a task can do this (SHOAL_SOCKET and SHOAL_TASK_TOKEN are not set)",
        ExitCode.usage,
      );
    }
    return print(await tool(), opts.json);
  }
  try {
    print(await asCli(fn), opts.json);
  } catch (err) {
    if (err instanceof CollectiveFailedError) {
      if (/^timed out/.test(err.reason)) throw new DeadlineError(err.message, { cause: err });
      throw new CliError(err.message, ExitCode.failure, { cause: err });
    }
    if (err instanceof TaskApiError && err.status === 400) {
      throw new CliError(err.message, ExitCode.usage, { cause: err });
    }
    if (err instanceof TaskApiError && err.status === 409) {
      throw new CliError(err.message, ExitCode.failure, { cause: err });
    }
    throw err;
  }
}

function common(opts: Opts): CollOptions & { root?: string } {
  return {
    ...(opts.group ? { group: opts.group } : {}),
    ...(opts.timeout ? { timeoutMs: opts.timeout } : {}),
    ...(opts.fanout ? { fanout: opts.fanout } : {}),
    ...(opts.root ? { root: opts.root } : {}),
  };
}

function reduction(op: string | undefined): Reduction {
  const o = op ?? "sum";
  if (!REDUCTIONS.includes(o)) {
    throw new CliError(`Unknown --op "${o}"; use ${REDUCTIONS.join(", ")}`, ExitCode.usage);
  }
  return o as Reduction;
}

/** Registers `shoal coll`. */
export function registerColl(program: Command): void {
  const coll = program.command("coll")
    .addHelpText(
      "after",
      `
Each collective has a NAME; a task's n-th call of a name is its generation n, so a name can be used in a loop,
and several names at once. The members are every task of the topology unless --group says:
  all | collection (this task's collection instance) | collection:<path> | group:<name> (DDS group)
  | regex:<re> (whole path) | tasks:<id or path>,…
and a suffix +tools:N (e.g. all+tools:1), written by every member, adds N places for tools.
The agent combines its own tasks' values, then agents combine along a tree (--fanout, default 8). A member
that exits before taking part, a dead agent, or a --timeout ends the generation for every member with an
error naming the missing members (exit 1; 5 for a timeout). Values are bytes: an argument, or - for stdin.

Outside a task (a tool, with --session and --id), the same commands take a tool place, and
\`shoal coll watch NAME\` prints a generation's outcome (the root's view) without taking part; a tool waits
at most 100 s per call.

Examples:
  $ shoal coll barrier ready --timeout 60
  $ shoal coll allreduce total --op sum 5                 # prints the sum over all members
  $ shoal coll allreduce hi --op max "$T" --group 'regex:main/g/.*'
  $ shoal coll broadcast config - --root main/master_0 < config.json   # the root sends, all print it
  $ shoal coll allgather hosts "$(hostname)"              # one line per member: path<TAB>value
  $ shoal coll scatter work --root main/master_0 a b c d   # the root gives one part per member
  $ shoal coll barrier go --group all+tools:1 --id Tutorial1   # a tool releases tasks waiting at "go"
  $ shoal coll watch total --id Tutorial1 --json          # the next generation's sum, from outside`,
    );
  const withCommon = (c: Command) =>
    c.option("--group <group>", "the members (see `shoal coll --help`)", "all")
      .option(
        "--timeout <seconds>",
        "end the generation for all if not complete after this long (default: none)",
        secondsOption,
      )
      .option("--fanout <k>", "fan-out of the tree of agents (all members must agree)", intOption(2), 8)
      .option(
        "--json",
        "print {name, generation, op, size, text|data, values: [{path, text|data}]} (data: base64, where not UTF-8)",
      )
      .option("--id <id>", "topology (tools only; default the only active one)")
      .option(
        "--generation <n>",
        "generation to take part in (tools only; default the first open)",
        intOption(1),
      );

  withCommon(
    coll.command("barrier").description("Wait until every member arrived")
      .addHelpText(
        "after",
        "\nExamples:\n  $ shoal coll barrier ready\n  $ shoal coll barrier step --group collection --timeout 30",
      ),
  )
    .argument("<name>")
    .action((name: string, o: Opts, cmd: Command) =>
      run(
        () => connectTask().coll.barrier(name, common(o)),
        o,
        () => asTool(name, { op: "barrier" }, o, cmd),
      )
    );

  withCommon(
    coll.command("broadcast").description("The root's value to every member (others give none)")
      .addHelpText(
        "after",
        "\nExamples:\n  $ shoal coll broadcast cfg - --root main/master_0 < cfg.json\n  $ shoal coll broadcast cfg",
      ),
  )
    .argument("<name>").argument("[value]", "the root's value (- for stdin)")
    .option("--root <path>", "root member (path or task ID; default the group's first member)")
    .action((name: string, v: string | undefined, o: Opts, cmd: Command) =>
      run(
        () => connectTask().coll.broadcast(name, value(v), common(o)),
        o,
        () => asTool(name, { op: "broadcast" }, o, cmd),
      )
    );

  for (const op of ["gather", "allgather"] as const) {
    const c = withCommon(
      coll.command(op).description(
        op === "gather"
          ? "Every member's value at the root, one line each"
          : "Every member's value at every member",
      ).addHelpText("after", `\nExamples:\n  $ shoal coll ${op} hosts "$(hostname)"`),
    )
      .argument("<name>").argument("<value>", "this member's value (- for stdin)");
    if (op === "gather") c.option("--root <path>", "root member (default the group's first member)");
    c.action((name: string, v: string, o: Opts, cmd: Command) =>
      run(
        () => connectTask().coll[op](name, value(v), common(o)),
        o,
        () => asTool(name, { op, data: value(v) }, o, cmd),
      )
    );
  }

  withCommon(
    coll.command("scatter").description("The root gives one part per member; each prints its own")
      .addHelpText(
        "after",
        "\nExamples:\n  $ shoal coll scatter work --root main/master_0 a b c d\n  $ shoal coll scatter work",
      ),
  )
    .argument("<name>").argument("[parts...]", "the root's parts, one per member in rank order")
    .option("--root <path>", "root member (default the group's first member)")
    .action((name: string, parts: string[], o: Opts, cmd: Command) =>
      run(
        () => connectTask().coll.scatter(name, parts.length > 0 ? parts : undefined, common(o)),
        o,
        () => asTool(name, { op: "scatter" }, o, cmd),
      )
    );

  for (const op of ["reduce", "allreduce"] as const) {
    const c = withCommon(
      coll.command(op).description(
        op === "reduce"
          ? "Combine every member's value, at the root"
          : "Combine every member's value, at every member",
      ).addHelpText(
        "after",
        `\nNumbers (sum, min, max) are decimal text or a JSON array of numbers (element-wise); integer sums are exact.
concat joins the values in rank order.\n\nExamples:\n  $ shoal coll ${op} total --op sum 5\n  $ shoal coll ${op} range --op max '[3,7]'`,
      ),
    )
      .argument("<name>").argument("<value>", "this member's value (- for stdin)")
      .option("--op <op>", "sum, min, max or concat", "sum");
    if (op === "reduce") c.option("--root <path>", "root member (default the group's first member)");
    c.action((name: string, v: string, o: Opts, cmd: Command) =>
      run(
        () => connectTask().coll[op](name, value(v), { ...common(o), op: reduction(o.op) }),
        o,
        () => asTool(name, { op, data: value(v), reduce: reduction(o.op) as string }, o, cmd),
      )
    );
  }

  coll.command("watch")
    .description("Print a generation's outcome without taking part (tools; the root's view)")
    .addHelpText(
      "after",
      `
Waits for the next generation of NAME to end (or --generation N) and prints what its root member gets: the
sum of an allreduce, every value of an allgather, nothing for a barrier (--json shows generation and size).
A failed generation exits 1 with the missing members. Waits at most 100 s.

Examples:
  $ shoal coll watch total --id Tutorial1
  $ shoal coll watch ready --generation 3 --json`,
    )
    .argument("<name>")
    .option("--group <group>", "the collective's group, as its members write it", "all")
    .option("--generation <n>", "the generation (default the next to end)", intOption(1))
    .option("--id <id>", "topology (default the only active one)")
    .option(
      "--json",
      "print {name, generation, op, size, text|data, values: [{path, text|data}]} (data: base64, where not UTF-8)",
    )
    .action(async (name: string, o: Opts, cmd: Command) => {
      print(await asTool(name, "observe", o, cmd), o.json);
    });
}

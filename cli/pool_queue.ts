/**
 * Queueing a topology in the session's pool and waiting until the scheduler starts it: `topology activate
 * --queue` and `env create --queue`.
 *
 * @module
 */
import { PoolError, type QueueRequest, queueTopology, waitStarted } from "../pool/mod.ts";
import { connectCommander } from "./commander.ts";
import { CliError, ExitCode } from "./errors.ts";
import { printJson } from "./format.ts";
import type { openSession } from "./session.ts";

/** Seconds with two decimals, as the CLI reports durations of operations. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Options of {@linkcode queueAndWait}. */
export interface QueueOptions {
  id?: string;
  json?: boolean;
  priority?: number;
  share?: string;
  /** False with `--no-wait`. */
  wait?: boolean;
}

/**
 * `activate --queue` and `env create --queue`: queue in the pool, then (unless --no-wait) wait until the
 * scheduler started it.
 */
export async function queueAndWait(
  session: Awaited<ReturnType<typeof openSession>>,
  src: { file: string; source: string; vars: Record<string, string> },
  opts: QueueOptions,
  env?: QueueRequest["env"],
): Promise<void> {
  await using c = await connectCommander(session);
  const entry = await asPool(() =>
    queueTopology(c.init, {
      ...src,
      ...(opts.id ? { id: opts.id } : {}),
      ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
      ...(opts.share ? { share: opts.share } : {}),
      ...(env ? { env } : {}),
    })
  );
  if (!opts.json) {
    process.stdout.write(
      `Queued "${entry.id}" (${entry.tasks} task(s), priority ${entry.priority}, share "${entry.share}")\n`,
    );
  }
  if (opts.wait === false) {
    if (opts.json) {
      printJson({ topologyId: entry.id, state: entry.state, priority: entry.priority, tasks: entry.tasks });
    }
    return;
  }
  let said = "";
  const began = Date.now();
  const e = await waitStarted(c.init, entry.id, {
    onWaiting: (position, waiting) => {
      const line = `  position ${position ?? "?"}: ${waiting}`;
      if (line !== said && !opts.json) process.stderr.write(`${line}\n`);
      said = line;
    },
  });
  if (opts.json) {
    printJson({
      topologyId: e.id,
      state: e.state,
      priority: e.priority,
      tasks: e.tasks,
      waitedMs: (e.startedAt ?? Date.now()) - e.queuedAt,
      ...(e.reason ? { reason: e.reason } : {}),
    });
  } else if (e.state === "cancelled") {
    process.stdout.write(`"${e.id}" left the queue: ${e.reason ?? "cancelled"}\n`);
  } else {
    process.stdout.write(
      `Started "${e.id}" from the pool after ${
        seconds((e.startedAt ?? Date.now()) - e.queuedAt)
      } in the queue` +
        ` (${seconds(Date.now() - began)} waited here)\n`,
    );
  }
  if (e.state === "cancelled") process.exitCode = ExitCode.failure;
}

async function asPool<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PoolError) throw new CliError(err.message, ExitCode.failure, { cause: err });
    throw err;
  }
}

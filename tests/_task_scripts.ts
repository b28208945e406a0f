/**
 * Helpers for tests whose tasks are shell scripts calling the `shoal` helper.
 *
 * @module
 */
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { assertEquals } from "./_assert.ts";
import { ps, type PsTask, SHOAL_BIN, type TestMesh } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

/** Writes an executable shell script (with `$SHOAL` set to the binary under test) and returns its path. */
export function script(mesh: TestMesh, name: string, body: string): string {
  const file = join(mesh.home.dir, name);
  Deno.writeTextFileSync(file, `#!/bin/sh\nSHOAL=${SHOAL_BIN}\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/**
 * Activates a topology (unless `file` is null) and waits until its tasks have all ended; returns `ps`.
 * It waits for exactly `options.tasks` tasks: by default the number the activation reports, which must be
 * given when `file` is null (an empty `ps` list would otherwise count as "all ended").
 */
export async function runToEnd(
  mesh: TestMesh,
  file: string | null,
  options: { tasks?: number; timeout?: number } = {},
): Promise<PsTask[]> {
  let count = options.tasks;
  if (file !== null) {
    const act = await mesh.run(["topology", "activate", file, "--json"]);
    assertEquals(act.code, 0, act.stderr);
    const started = (JSON.parse(act.stdout) as { tasks: unknown[] }).tasks.length;
    if (count !== undefined) assertEquals(started, count, "tasks activated");
    count = started;
  }
  if (count === undefined) throw new TypeError("runToEnd needs options.tasks when no file is activated");
  if (count === 0) throw new RangeError("runToEnd waits for at least one task");
  const n = count;
  return await waitFor(async () => {
    const tasks = await ps(mesh);
    return tasks.length === n && tasks.every((t) => t.state === "exited" || t.state === "failed")
      ? tasks
      : undefined;
  }, { timeout: options.timeout ?? 60_000, what: `all ${n} tasks to end` });
}

/** The stdout of the tasks whose path matches `regex`, without prefixes. */
export async function logsOf(mesh: TestMesh, regex: string): Promise<string> {
  const r = await mesh.run(["logs", "--no-prefix", regex]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout;
}

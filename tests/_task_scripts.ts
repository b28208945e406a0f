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

/** Activates a topology (unless `file` is null) and waits until every task has ended; returns `ps`. */
export async function runToEnd(mesh: TestMesh, file: string | null, timeout = 60_000): Promise<PsTask[]> {
  if (file !== null) {
    const act = await mesh.run(["topology", "activate", file, "--json"]);
    assertEquals(act.code, 0, act.stderr);
  }
  await waitFor(async () => (await ps(mesh)).every((t) => t.state === "exited" || t.state === "failed"), {
    timeout,
    what: "every task to end",
  });
  return await ps(mesh);
}

/** The stdout of the tasks whose path matches `regex`, without prefixes. */
export async function logsOf(mesh: TestMesh, regex: string): Promise<string> {
  const r = await mesh.run(["logs", "--no-prefix", regex]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout;
}

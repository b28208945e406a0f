import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import { createCommandHandler } from "./_command_handler.ts";
import { isGone } from "../runner/mod.ts";

function scripts(): { dir: string; write(name: string, body: string): string } & Disposable {
  const dir = mkdtempSync(join(tmpdir(), "shoal-handler-"));
  return {
    dir,
    write(name, body) {
      const file = join(dir, name);
      writeFileSync(file, `#!/bin/sh\n${body}\n`);
      chmodSync(file, 0o755);
      return file;
    },
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("command handler: payload on stdin, sender in the environment, stdout is the reply", async () => {
  using s = scripts();
  const file = s.write("echo.sh", `printf '%s|' "$SHOAL_COMMAND_SENDER"; cat`);
  const handler = createCommandHandler({ file });
  const out = await handler.run(bytes("hello agent"), { SHOAL_COMMAND_SENDER: "tool:x" });
  assert(out.ok, JSON.stringify(out));
  assertEquals(text(out.stdout), "tool:x|hello agent");
  assertEquals(out.truncated, false);
  handler.close();
});

Deno.test("command handler: a non-zero exit is a failure with stderr's tail", async () => {
  using s = scripts();
  const file = s.write("fail.sh", `echo "line 1" >&2; echo "no such thing" >&2; exit 3`);
  const handler = createCommandHandler({ file });
  const out = await handler.run(bytes("x"), {});
  assert(!out.ok);
  assertEquals(out.reason, "command handler exited with code 3");
  assertEquals(out.stderrTail, "line 1\nno such thing");
  handler.close();
});

Deno.test("command handler: a run past the timeout loses its process group", async () => {
  using s = scripts();
  const pidFile = join(s.dir, "child.pid");
  const file = s.write("hang.sh", `sleep 600 & echo $! > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; wait`);
  // The timeout must come after the child started: a loaded machine can take a while to run a shell.
  const handler = createCommandHandler({ file, timeoutMs: 3_000, graceMs: 200 });
  const running = handler.run(bytes("x"), {});
  const child = await waitFor(() => existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : 0, {
    timeout: 3_000,
    what: "the handler to start its child before its timeout",
  });
  assert(!isGone(child), `the child ${child} runs before the timeout`);
  const out = await running;
  assert(!out.ok);
  assertStringIncludes(out.reason, "timed out after 3 s");
  await waitFor(() => isGone(child), { what: `the handler's child ${child} to be killed` });
  handler.close();
});

Deno.test("command handler: output is cut at the limit; a handler ignoring stdin is fine", async () => {
  using s = scripts();
  const file = s.write("big.sh", `head -c 5000 /dev/zero`);
  const handler = createCommandHandler({ file, maxStdoutBytes: 1000 });
  const out = await handler.run(new Uint8Array(4 * 1024 * 1024), {});
  assert(out.ok, JSON.stringify(out));
  assertEquals([out.stdout.byteLength, out.truncated], [1000, true]);
  handler.close();
});

Deno.test("command handler: a missing file is a failure, not a throw", async () => {
  using s = scripts();
  const handler = createCommandHandler({ file: join(s.dir, "missing.sh") });
  const out = await handler.run(bytes("x"), {});
  assert(!out.ok);
  assertStringIncludes(out.reason, "not found");
  handler.close();
});

Deno.test("command handler: runs beyond the concurrency and queue bounds are refused", async () => {
  using s = scripts();
  const file = s.write("slow.sh", `read line; echo "$line"`);
  const handler = createCommandHandler({ file, concurrency: 1, maxQueued: 1 });
  const runs = [handler.run(bytes("1\n"), {}), handler.run(bytes("2\n"), {}), handler.run(bytes("3\n"), {})];
  const outs = await Promise.all(runs);
  assertEquals(outs.map((o) => o.ok), [true, true, false]);
  assert(!outs[2]!.ok);
  assertStringIncludes(outs[2]!.reason, "busy");
  handler.close();
});

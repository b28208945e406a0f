/**
 * Custom commands addressed to agents (`agent`, `agent:<peer ID or host>`) on a real local mesh: the
 * built-in verbs, the `--command-handler`, and commands sent by tools and by tasks.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { createHome, joinArgs, ps, spawnAgent, startMesh, type TestMesh, writeTopology } from "./_harness.ts";
import { logsOf, script } from "./_task_scripts.ts";
import { waitFor } from "./_wait.ts";

interface SendJson {
  id: string;
  timedOut: boolean;
  replies: { sender: string; path: string; host?: string; text?: string; data: string }[];
}

async function send(mesh: TestMesh, args: string[]): Promise<SendJson> {
  const r = await mesh.run(["cmd", "send", ...args, "--json", "--timeout", "20"]);
  assertEquals(r.code, 0, `shoal cmd send ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout) as SendJson;
}

/** Which agents logged that they answered command `id`. */
function answeredBy(mesh: TestMesh, id: string): string[] {
  return mesh.agents.filter((a) => readFileSync(join(a.dataDir, "agent.log"), "utf8").includes(`id=${id}`))
    .map((a) => a.id);
}

Deno.test("agent cmd: a tool reaches every agent, or one, with no topology active", async () => {
  await using mesh = await startMesh({ agents: 3, slots: 2 });
  const ids = mesh.agents.map((a) => a.id).sort();

  // Without --wait-replies, a tool waits for every alive agent the condition names.
  const ping = await send(mesh, ["ping", "--condition", "agent"]);
  assertEquals(ping.timedOut, false);
  assertEquals(ping.replies.map((r) => r.sender).sort(), ids.map((id) => `agent:${id}`));
  for (const r of ping.replies) {
    assertEquals([r.path, r.host], ["", hostname()]);
    assertEquals(r.text, `pong from agent ${r.sender.slice(6)} on ${hostname()}`);
  }

  const status = await send(mesh, ["status", "--condition", "agent", "--wait-replies", "3"]);
  for (const r of status.replies) {
    const s = JSON.parse(r.text!) as Record<string, unknown>;
    assertEquals(`agent:${s.peerId}`, r.sender);
    assertEquals(s.host, hostname());
    assertEquals(s.slots, { total: 2, free: 2 });
    assertEquals(s.tasks, { running: 0, byTopology: {} });
    assert(typeof s.version === "string" && typeof s.uptimeS === "number", JSON.stringify(s));
    assertEquals((s.members as Record<string, number>).alive, 3);
  }

  const target = mesh.agents[1]!;
  const one = await send(mesh, ["ping", "--condition", `agent:${target.id}`]);
  assertEquals(one.replies.map((r) => r.sender), [`agent:${target.id}`]);
  // A later round trip to all agents: by then the others would have logged the first one too.
  await send(mesh, ["ping", "--condition", "agent"]);
  assertEquals(answeredBy(mesh, one.id), [target.id]);

  const byHost = await send(mesh, ["ping", "--condition", `agent:${hostname()}`]);
  assertEquals(byHost.replies.length, 3, "every agent of this host");

  const log = await send(mesh, ["getlog", "5", "--condition", `agent:${target.id}`]);
  const lines = log.replies[0]!.text!.trimEnd().split("\n");
  assertEquals(lines.length, 5);
  assert(lines.some((l) => l.includes(`agent command id=${one.id}`)), lines.join("\n"));

  const unknown = await send(mesh, ["frobnicate", "--condition", "agent", "--wait-replies", "3"]);
  assertEquals(
    unknown.replies.map((r) => r.text),
    Array(3).fill(
      'error: unknown agent command "frobnicate"; built-in: ping, status, getlog; ' +
        "add yours with shoal agent --command-handler FILE",
    ),
  );

  const bad = await mesh.run(["cmd", "send", "ping", "--condition", "agent:"]);
  assertEquals(bad.code, 2, bad.stderr);
  const nobody = await mesh.run(["cmd", "send", "ping", "--condition", "agent:no-such-host"]);
  assertEquals(nobody.code, 1, nobody.stderr);
  assertStringIncludes(nobody.stderr, 'No alive agent matches condition "agent:no-such-host"');
});

Deno.test("agent cmd: a task's command to agents gets their replies and reaches no task", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  // A task whose path contains "agent": the condition must not reach it as a regex would.
  const listener = script(mesh, "listen.sh", `exec $SHOAL cmd recv --count 0 --reply heard --json`);
  const asker = script(
    mesh,
    "ask.sh",
    `exec $SHOAL cmd send status --condition agent --wait-replies 2 --timeout 30 --json`,
  );
  const file = writeTopology(
    mesh.home.dir,
    "ask.xml",
    `<topology name="AskAgents">
  <decltask name="agent"><exe reachable="true">${listener}</exe></decltask>
  <decltask name="Ask"><exe reachable="true">${asker}</exe></decltask>
  <main name="main"><task>agent</task><task>Ask</task></main>
</topology>`,
  );
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  await waitFor(async () => (await ps(mesh)).find((t) => t.path === "main/Ask_0")?.state === "exited", {
    timeout: 60_000,
    what: "the asking task to end",
  });
  const asked = (await ps(mesh)).find((t) => t.path === "main/Ask_0")!;
  assertEquals(asked.exitCode, 0);
  const sent = JSON.parse(await logsOf(mesh, "main/Ask_0")) as SendJson;
  assertEquals(sent.replies.map((r) => r.sender).sort(), mesh.agents.map((a) => `agent:${a.id}`).sort());
  for (const r of sent.replies) {
    assertEquals([r.path, r.host], ["", hostname()]);
    const s = JSON.parse(r.text!) as { slots: { total: number }; tasks: { running: number } };
    assertEquals(s.slots.total, 2);
  }
  // A round trip to the listening task: anything sent to it before has arrived by now.
  const barrier = await send(mesh, ["barrier", "--condition", "main/agent_0", "--wait-replies", "1"]);
  assertEquals(barrier.replies.map((r) => r.text), ["heard"]);
  const heard = (await logsOf(mesh, "main/agent_0")).trim().split("\n").map((l) =>
    (JSON.parse(l) as { text: string }).text
  );
  assertEquals(heard, ["barrier"], "the task main/agent_0 never got the command to agents");
  assertEquals((await mesh.run(["topology", "stop"])).code, 0);
});

Deno.test("agent cmd: --command-handler answers other verbs; a failing one replies error: and the agent goes on", async () => {
  const handlerDir = Deno.makeTempDirSync({ prefix: "shoal-handler-" });
  try {
    const handler = join(handlerDir, "handler.sh");
    Deno.writeTextFileSync(
      handler,
      `#!/bin/sh
payload=$(cat)
case "$payload" in
  echo\\ *) printf '%s from %s to %s' "\${payload#echo }" "$SHOAL_COMMAND_SENDER" "$SHOAL_AGENT_ID" ;;
  fail*) echo "handler could not: $payload" >&2; exit 1 ;;
  hang*) sleep 600 ;;
  *) echo "what is $payload?"; exit 2 ;;
esac
`,
    );
    Deno.chmodSync(handler, 0o755);
    await using home = createHome();
    const notExecutable = await home.run(["up", "--command-handler", join(handlerDir, "missing.sh")]);
    assertEquals(notExecutable.code, 2, notExecutable.stderr);
    assertStringIncludes(notExecutable.stderr, "is not an executable file");
    await using mesh = await startMesh({ agents: 2, upArgs: ["--command-handler", handler] });

    const echo = await send(mesh, ["echo", "hello", "--condition", "agent"]);
    assertEquals(echo.replies.length, 2);
    for (const r of echo.replies) {
      const text = r.text ?? "";
      assert(text.startsWith("hello from tool:") && text.endsWith(` to ${r.sender.slice(6)}`), text);
    }

    const fail = await send(mesh, ["fail", "now", "--condition", "agent"]);
    assertEquals(fail.replies.length, 2);
    for (const r of fail.replies) {
      assertEquals(r.text, "error: command handler exited with code 1\nhandler could not: fail now");
    }
    // Built-ins still win over the handler, and the agents keep serving after a failure.
    const ping = await send(mesh, ["ping", "--condition", "agent"]);
    assertEquals(ping.replies.length, 2);
    assert(ping.replies.every((r) => r.text?.startsWith("pong from agent")));
    const again = await send(mesh, ["echo", "again", "--condition", `agent:${mesh.agents[0]!.id}`]);
    assert(again.replies[0]!.text?.startsWith("again from tool:"), again.replies[0]!.text);

    // A hanging handler is cut off by --command-timeout; its agent still answers afterwards.
    await using slow = spawnAgent(mesh.home, "slow", [
      ...joinArgs(mesh),
      "--command-handler",
      handler,
      "--command-timeout",
      "1",
      "--quiet",
    ]);
    const slowAgent = await slow.ready();
    // Retried until the new agent is in the mesh: a command sent before that reaches no one.
    await waitFor(async () => {
      const r = await mesh.run([
        "cmd",
        "send",
        "ping",
        "--condition",
        `agent:${slowAgent.id}`,
        "--timeout",
        "2",
      ]);
      return r.code === 0;
    }, { timeout: 30_000, what: "the new agent to answer" });
    const hang = await send(mesh, ["hang", "--condition", `agent:${slowAgent.id}`]);
    assertEquals(hang.replies.map((r) => r.text), ["error: command handler timed out after 1 s"]);
    const alive = await send(mesh, ["ping", "--condition", `agent:${slowAgent.id}`]);
    assertEquals(alive.replies.map((r) => r.sender), [`agent:${slowAgent.id}`]);
    assertEquals(slow.stderr(), "", "the agent logged no crash");
  } finally {
    Deno.removeSync(handlerDir, { recursive: true });
  }
});

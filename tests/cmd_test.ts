/**
 * Custom commands on a real local mesh: tasks (shell scripts using the `shoal` helper, and a TypeScript
 * task using `mod.ts`) and tools send commands routed by DDS conditions and gather replies.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ps, SHOAL_BIN, startMesh, writeTopology } from "./_harness.ts";
import { logsOf, runToEnd, script } from "./_task_scripts.ts";
import { waitFor } from "./_wait.ts";

interface SendJson {
  id: string;
  timedOut: boolean;
  replies: { sender: string; path: string; text?: string; data: string }[];
}

Deno.test("cmd: DDS custom_cmd_test — every task sends to all others and gets every reply", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const n = 4;
  const task = script(
    mesh,
    "custom_cmd.sh",
    `$SHOAL kv put Ready 1 && $SHOAL kv get Ready --wait-count ${n} --timeout 30 >/dev/null || exit 1
$SHOAL cmd recv --count ${n - 1} --reply "pong from $DDS_TASK_INDEX" --timeout 30 > recv.txt &
recv=$!
$SHOAL cmd send "ping from $DDS_TASK_INDEX" --wait-replies ${n - 1} --timeout 30 --json || exit 2
wait $recv || exit 3
sort recv.txt`,
  );
  const file = writeTopology(
    mesh.home.dir,
    "cc.xml",
    `<topology name="CustomCmdTest">
  <property name="Ready"/>
  <decltask name="TaskCustomCmd"><exe reachable="true">${task}</exe>
    <properties><name access="readwrite">Ready</name></properties></decltask>
  <main name="main"><group name="GroupCustomCmd" n="${n}"><task>TaskCustomCmd</task></group></main>
</topology>`,
  );
  const tasks = await runToEnd(mesh, file, { tasks: n });
  assertEquals(
    tasks.map((t) => t.path).sort(),
    [0, 1, 2, 3].map((i) => `main/GroupCustomCmd/TaskCustomCmd_${i}`),
  );
  assertEquals(tasks.filter((t) => t.exitCode !== 0).map((t) => [t.path, t.exitCode]), []);
  for (const t of tasks) {
    const [json, ...received] = (await logsOf(mesh, `${t.path}$`)).trim().split("\n");
    const sent = JSON.parse(json!) as SendJson;
    const me = t.path.at(-1)!;
    const others = ["0", "1", "2", "3"].filter((i) => i !== me);
    assertEquals(sent.timedOut, false);
    assertEquals(sent.replies.map((r) => r.text).sort(), others.map((i) => `pong from ${i}`));
    assert(sent.replies.every((r) => r.path !== t.path && tasks.some((x) => x.id === r.sender)));
    assertEquals(received, others.map((i) => `ping from ${i}`));
  }
});

Deno.test("cmd: a tool routes by task ID, exact path and regex; binary payloads; replies time out", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const task = script(mesh, "echo.sh", `exec $SHOAL cmd recv --count 0 --reply "$DDS_TASK_PATH" --json`);
  const file = writeTopology(
    mesh.home.dir,
    "route.xml",
    `<topology name="Route">
  <decltask name="A"><exe reachable="true">${task}</exe></decltask>
  <decltask name="B"><exe reachable="true">${task}</exe></decltask>
  <main name="main"><task>A</task><group name="g" n="2"><task>B</task></group></main>
</topology>`,
  );
  assertEquals((await mesh.run(["topology", "activate", file])).code, 0);
  const tasks = await waitFor(async () => {
    const t = await ps(mesh);
    return t.length === 3 && t.every((x) => x.state === "running") ? t : undefined;
  }, { what: "the tasks to run" });
  const send = async (args: string[]) => {
    const r = await mesh.run(["cmd", "send", ...args, "--json", "--timeout", "10"]);
    assertEquals(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as SendJson).replies.map((x) => x.text).sort();
  };
  assertEquals(await send(["hello", "--wait-replies", "3"]), ["main/A_0", "main/g/B_0", "main/g/B_1"]);
  const b1 = tasks.find((t) => t.path === "main/g/B_1")!;
  assertEquals(await send(["by-id", "--condition", b1.id, "--wait-replies", "1"]), ["main/g/B_1"]);
  assertEquals(await send(["exact", "--condition", "main/A_0", "--wait-replies", "1"]), ["main/A_0"]);
  assertEquals(await send(["regex", "--condition", "B_\\d$", "--wait-replies", "2"]), [
    "main/g/B_0",
    "main/g/B_1",
  ]);
  const bytes = new Uint8Array(256).map((_, i) => i);
  const bin = `${mesh.home.dir}/blob.bin`;
  Deno.writeFileSync(bin, bytes);
  assertEquals(await send(["--file", bin, "--condition", "main/A_0", "--wait-replies", "1"]), ["main/A_0"]);
  // One task matches, so a second reply never comes: the send times out with the one it got. The deadline
  // leaves a loaded machine ample time for that one reply (the sends above took milliseconds).
  const short = await mesh.run([
    "cmd",
    "send",
    "x",
    "--condition",
    "main/A_0",
    "--wait-replies",
    "2",
    "--timeout",
    "5",
    "--json",
  ]);
  assertEquals(short.code, 5, short.stderr);
  assertStringIncludes(short.stderr, "Got 1 of 2 replies within 5 s");
  const timedOut = JSON.parse(short.stdout) as SendJson;
  assertEquals([timedOut.timedOut, timedOut.replies.map((r) => r.text)], [true, ["main/A_0"]]);
  const got = (await logsOf(mesh, "main/A_0")).trim().split("\n").map((l) =>
    JSON.parse(l) as { data: string }
  );
  const received = got.map((g) => Uint8Array.from(atob(g.data), (c) => c.charCodeAt(0)));
  assert(
    received.some((r) => r.length === 256 && r.every((b, i) => b === i)),
    "the binary payload arrived intact",
  );
  assertEquals((await mesh.run(["topology", "stop"])).code, 0);
});

Deno.test("cmd: a task hears of another task's end (path, exit code)", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 2 });
  const listener = script(mesh, "listen.sh", `exec $SHOAL cmd recv --events --count 1 --timeout 30 --json`);
  const quick = script(mesh, "quick.sh", `exit 3`);
  const file = writeTopology(
    mesh.home.dir,
    "done.xml",
    `<topology name="Done">
  <decltask name="Listener"><exe reachable="true">${listener}</exe></decltask>
  <decltask name="Quick"><exe reachable="true">${quick}</exe></decltask>
  <main name="main"><task>Listener</task><task>Quick</task></main>
</topology>`,
  );
  const tasks = await runToEnd(mesh, file, { tasks: 2 });
  assertEquals(tasks.map((t) => [t.path, t.exitCode]).sort(), [["main/Listener_0", 0], ["main/Quick_0", 3]]);
  const event = JSON.parse(await logsOf(mesh, "Listener")) as Record<string, unknown>;
  assertEquals([event.type, event.path, event.code, event.signal], ["task:done", "main/Quick_0", 3, null]);
});

Deno.test("cmd: a TypeScript task uses mod.ts for key-values and commands", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 1 });
  const modUrl = new URL("../mod.ts", import.meta.url).href;
  const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
  const ts = `${mesh.home.dir}/task.ts`;
  Deno.writeTextFileSync(
    ts,
    `import { connectTask } from ${JSON.stringify(modUrl)};
const task = connectTask();
const index = process.env.DDS_TASK_INDEX!;
await task.kv.put("Idx", index);
const all = await task.kv.get("Idx", { waitCount: 2, timeoutMs: 30_000 });
const watched = [];
for await (const u of task.kv.watch({ key: "Idx", from: "0", signal: AbortSignal.timeout(30_000) })) {
  watched.push(u.values[0].value);
  if (watched.length === 2) break;
}
let reply = "";
if (index === "0") {
  const r = await task.cmd.send("question", { waitReplies: 1, timeoutMs: 30_000 });
  reply = new TextDecoder().decode(r.replies[0].payload);
} else {
  for await (const c of task.cmd.listen({ signal: AbortSignal.timeout(30_000) })) {
    if (c.type !== "cmd") continue;
    await task.cmd.reply(c.id, "answer to " + c.text);
    break;
  }
}
console.log(JSON.stringify({ values: all.values.map((v) => v.value).sort(), watched: watched.sort(), reply }));
process.exit(0);
`,
  );
  const file = writeTopology(
    mesh.home.dir,
    "ts.xml",
    `<topology name="Ts">
  <property name="Idx"/>
  <decltask name="T"><exe reachable="true">${bun} run ${ts}</exe>
    <properties><name access="readwrite">Idx</name></properties></decltask>
  <main name="main"><group name="g" n="2"><task>T</task></group></main>
</topology>`,
  );
  const tasks = await runToEnd(mesh, file, { tasks: 2, timeout: 90_000 });
  assertEquals(tasks.map((t) => [t.path, t.exitCode]).sort(), [["main/g/T_0", 0], ["main/g/T_1", 0]]);
  const out = (i: number) => logsOf(mesh, `main/g/T_${i}$`).then((s) => JSON.parse(s));
  assertEquals(await out(0), { values: ["0", "1"], watched: ["0", "1"], reply: "answer to question" });
  assertEquals(await out(1), { values: ["0", "1"], watched: ["0", "1"], reply: "" });
});

Deno.test("cmd: a listening tool gets a task's command and its reply goes back to the task", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 1 });
  const tool = new Deno.Command(SHOAL_BIN, {
    args: [
      "cmd",
      "recv",
      "--count",
      "0",
      "--reply",
      "from the tool",
      "--json",
      "--id",
      "Tool",
      "--session",
      mesh.session,
    ],
    env: mesh.home.env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const task = script(
    mesh,
    "ask.sh",
    `# Retried until the tool listens: a command sent before that reaches no tool.
until out=$($SHOAL cmd send "hello tool" --wait-replies 1 --timeout 1 --json); do :; done
echo "$out"`,
  );
  const file = writeTopology(
    mesh.home.dir,
    "tool.xml",
    `<topology name="Tool"><decltask name="Ask"><exe reachable="true">${task}</exe></decltask>
  <main name="main"><task>Ask</task></main></topology>`,
  );
  const tasks = await runToEnd(mesh, file, { tasks: 1 });
  tool.kill("SIGTERM");
  const out = await tool.output();
  assertEquals(tasks.map((t) => [t.path, t.exitCode]), [["main/Ask_0", 0]]);
  const sent = JSON.parse(await logsOf(mesh, "Ask")) as SendJson;
  assertEquals(sent.replies.map((r) => r.text), ["from the tool"]);
  assert(sent.replies[0]!.sender.startsWith("tool:"));
  const heard = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
  assert(heard.length >= 1 && heard.every((h) => h.text === "hello tool" && h.path === "main/Ask_0"));
});

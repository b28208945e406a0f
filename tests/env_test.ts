/**
 * Environments with real agents and tasks: AliECS's cycle with shell and TypeScript `direct` tasks, `basic`
 * tasks started and stopped with the run, an untouched `none` task, hooks in order, errors and recovery,
 * crashes, refused events and a controller killed half-way.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ps, SHOAL_BIN, startMesh, type TestMesh, writeTopology } from "./_harness.ts";
import { watchEvents } from "./_events.ts";
import { script } from "./_task_scripts.ts";
import { waitFor } from "./_wait.ts";

interface ShownEnv {
  state: string;
  runNumber: number | null;
  reason: string | null;
  taskState: string;
  controller: unknown;
  lastTransition:
    | { event: string; ok: boolean; by: string; ms: number; startedAt: number; reason?: string }
    | null;
  history: { event: string; ok: boolean }[];
  tasks: { path: string; state: string; mode: string; reason?: string }[];
}

async function show(mesh: TestMesh, id: string, agent?: string): Promise<ShownEnv> {
  const r = await mesh.run(["env", "show", id, "--json", ...(agent ? ["--agent", agent] : [])]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function control(mesh: TestMesh, id: string, event: string, ...args: string[]) {
  const r = await mesh.run(["env", "control", id, "-e", event, "--json", ...args], { timeoutMs: 90_000 });
  assertEquals(r.code, 0, `${event}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ShownEnv & {
    answers: { path: string; ok: boolean }[];
    transition: NonNullable<ShownEnv["lastTransition"]>;
  };
}

function states(env: ShownEnv): Record<string, string> {
  return Object.fromEntries(env.tasks.map((t) => [t.path, t.state]));
}

function lines(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

Deno.test("env: the whole cycle with shell and TypeScript direct tasks, basic tasks per run, a none task untouched, hooks in order", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 4 });
  const log = join(mesh.home.dir, "order.log");
  const onTransition = script(
    mesh,
    "on.sh",
    `echo "sh $SHOAL_ENV_EVENT $SHOAL_RUN_NUMBER $SHOAL_ENV_ARG_DETECTOR" >> ${log}`,
  );
  const modUrl = new URL("../mod.ts", import.meta.url).href;
  const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
  const ts = join(mesh.home.dir, "task.ts");
  Deno.writeTextFileSync(
    ts,
    `import { appendFileSync } from "node:fs";
import { connectTask } from ${JSON.stringify(modUrl)};
for await (const t of connectTask().transitions()) {
  appendFileSync(${JSON.stringify(log)}, \`ts \${t.event} \${t.runNumber ?? ""}\\n\`);
  await t.ok();
}`,
  );
  const hook = (name: string) =>
    `<decltask name="${name}"><exe reachable="true">sh -c 'echo "hook ${name} $SHOAL_ENV_TRIGGER $SHOAL_RUN_NUMBER" &gt;&gt; ${log}'</exe></decltask>`;
  writeTopology(
    mesh.home.dir,
    "cycle.xml",
    `<topology name="cycle">
  <decltask name="Sh"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${onTransition}</exe></decltask>
  <decltask name="Ts"><exe reachable="true">${bun} run ${ts}</exe></decltask>
  <decltask name="Basic"><exe reachable="true">sh -c 'echo "basic $SHOAL_RUN_NUMBER" &gt;&gt; ${log}; exec sleep 600'</exe></decltask>
  <decltask name="Plain"><exe reachable="true">sh -c 'echo "plain started" &gt;&gt; ${log}; exec sleep 600'</exe></decltask>
  ${hook("HookA")}${hook("HookB")}${hook("HookC")}${hook("HookD")}${hook("HookE")}${hook("HookF")}${
      hook("HookG")
    }${hook("HookH")}${hook("HookI")}${hook("HookJ")}${hook("HookK")}${hook("HookL")}
  <main name="main">
    <task>Sh</task><task>Ts</task><task>Basic</task><task>Plain</task>
    <task>HookH</task><task>HookI</task><task>HookJ</task><task>HookK</task><task>HookL</task>
    <task>HookA</task><task>HookB</task><task>HookC</task><task>HookD</task><task>HookE</task><task>HookF</task><task>HookG</task>
  </main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "cycle.env.json");
  Deno.writeTextFileSync(
    envFile,
    JSON.stringify({
      topology: "cycle.xml",
      timeouts: { default: 20 },
      control: [
        { tasks: "main/(Sh|Ts)_0", mode: "direct" },
        { tasks: "main/Basic_0", mode: "basic" },
        { tasks: "main/HookA_0", mode: "hook", trigger: "before_CONFIGURE+5" },
        { tasks: "main/HookB_0", mode: "hook", trigger: "before_CONFIGURE-10" },
        { tasks: "main/HookC_0", mode: "hook", trigger: "after_CONFIGURE" },
        { tasks: "main/HookD_0", mode: "hook", trigger: "enter_CONFIGURED" },
        { tasks: "main/HookE_0", mode: "hook", trigger: "leave_DEPLOYED" },
        { tasks: "main/HookF_0", mode: "hook", trigger: "before_START_ACTIVITY" },
        { tasks: "main/HookG_0", mode: "hook", trigger: "after_EXIT" },
        { tasks: "main/HookH_0", mode: "hook", trigger: "after_DEPLOY" },
        { tasks: "main/HookI_0", mode: "hook", trigger: "enter_DEPLOYED" },
        { tasks: "main/HookJ_0", mode: "hook", trigger: "leave_STANDBY" },
        { tasks: "main/HookK_0", mode: "hook", trigger: "before_DEPLOY" },
        { tasks: "main/HookL_0", mode: "hook", trigger: "before_DEPLOY-3" },
      ],
    }),
  );
  const created = await mesh.run(["env", "create", envFile, "--json"], { timeoutMs: 60_000 });
  assertEquals(created.code, 0, created.stderr);
  // DEPLOY's hooks in AliECS's order, by weight; the tasks start between leave_STANDBY and enter_DEPLOYED.
  const deploy = lines(log);
  assertEquals(deploy, [
    "hook HookL before_DEPLOY-3 ",
    "hook HookK before_DEPLOY ",
    "hook HookJ leave_STANDBY ",
    "plain started",
    "hook HookI enter_DEPLOYED ",
    "hook HookH after_DEPLOY ",
  ]);
  assertEquals(
    JSON.parse(created.stdout).hooks.map((h: { path: string; ok: boolean }) => `${h.path}:${h.ok}`),
    ["main/HookL_0:true", "main/HookK_0:true", "main/HookJ_0:true", "main/HookI_0:true", "main/HookH_0:true"],
  );
  let env = await show(mesh, "cycle");
  assertEquals(env.state, "DEPLOYED");
  assertEquals(states(env), {
    "main/Sh_0": "STANDBY",
    "main/Ts_0": "STANDBY",
    "main/Basic_0": "STANDBY",
    "main/Plain_0": "INVARIANT",
  });
  const running = async () => (await ps(mesh)).filter((t) => t.state === "running").map((t) => t.path).sort();
  assertEquals(await running(), ["main/Plain_0", "main/Sh_0", "main/Ts_0"]);
  const plainPid = (await ps(mesh)).find((t) => t.path === "main/Plain_0")!.pid;

  // A forbidden event is refused with the allowed ones named, and changes nothing.
  const refused = await mesh.run(["env", "control", "cycle", "-e", "START_ACTIVITY"]);
  assertEquals(refused.code, 1);
  assertStringIncludes(
    refused.stderr,
    'Event "START_ACTIVITY" is not allowed in state DEPLOYED of environment "cycle"; allowed: CONFIGURE, EXIT, GO_ERROR',
  );
  assertEquals((await show(mesh, "cycle")).state, "DEPLOYED");

  env = await control(mesh, "cycle", "CONFIGURE", "--arg", "detector=TPC");
  assertEquals(env.state, "CONFIGURED");
  assertEquals(env.taskState, "CONFIGURED");
  // Hooks in AliECS's order, by weight; the tasks between leave_ and enter_.
  const cfg = lines(log).slice(deploy.length);
  assertEquals(cfg.slice(0, 2), ["hook HookB before_CONFIGURE-10 ", "hook HookA before_CONFIGURE+5 "]);
  assertEquals(cfg[2], "hook HookE leave_DEPLOYED ");
  assertEquals(cfg.slice(3, 5).sort(), ["sh CONFIGURE  TPC", "ts CONFIGURE "]);
  assertEquals(cfg.slice(5), ["hook HookD enter_CONFIGURED ", "hook HookC after_CONFIGURE "]);

  env = await control(mesh, "cycle", "START_ACTIVITY");
  assertEquals([env.state, env.runNumber], ["RUNNING", 1]);
  assertEquals(states(env)["main/Basic_0"], "RUNNING");
  assertEquals(await running(), ["main/Basic_0", "main/Plain_0", "main/Sh_0", "main/Ts_0"]);
  env = await control(mesh, "cycle", "STOP_ACTIVITY");
  assertEquals(env.state, "CONFIGURED");
  await waitFor(async () => !(await running()).includes("main/Basic_0"), { what: "the basic task to stop" });
  env = await control(mesh, "cycle", "START_ACTIVITY");
  assertEquals([env.state, env.runNumber], ["RUNNING", 2]);
  env = await control(mesh, "cycle", "STOP_ACTIVITY");
  env = await control(mesh, "cycle", "RESET");
  assertEquals(env.state, "DEPLOYED");
  assertEquals(
    (await ps(mesh)).find((t) => t.path === "main/Plain_0")!.pid,
    plainPid,
    "the none task was untouched",
  );
  const all = lines(log);
  assertEquals(all.filter((l) => l.startsWith("sh ")), [
    "sh CONFIGURE  TPC",
    "sh START_ACTIVITY 1 ",
    "sh STOP_ACTIVITY 1 ",
    "sh START_ACTIVITY 2 ",
    "sh STOP_ACTIVITY 2 ",
    "sh RESET 2 ",
  ]);
  assertEquals(all.filter((l) => l.startsWith("basic ")), ["basic 1", "basic 2"]);
  assertEquals(all.filter((l) => l.startsWith("hook HookF")), [
    "hook HookF before_START_ACTIVITY 1",
    "hook HookF before_START_ACTIVITY 2",
  ]);
  // Any peer shows the same environment.
  for (const a of mesh.agents) {
    await waitFor(async () => (await show(mesh, "cycle", a.id)).state === "DEPLOYED", {
      what: `agent ${a.id}'s replica`,
    });
  }
  env = await control(mesh, "cycle", "EXIT");
  assertEquals(env.state, "DONE");
  await waitFor(async () => (await running()).length === 0, { what: "every task to stop at EXIT" });
  // after_EXIT runs once the tasks stopped, as a task of the topology still active then.
  assertEquals(lines(log).at(-1), "hook HookG after_EXIT 2");
  const human = await mesh.run(["env", "show", "cycle"]);
  assertStringIncludes(
    human.stdout,
    "last transition: EXIT CONFIGURED → DONE".replace("CONFIGURED", "DEPLOYED"),
  );
  const destroyed = await mesh.run(["env", "destroy", "cycle"]);
  assertEquals(destroyed.code, 0, destroyed.stderr);
});

Deno.test("env: hooks run as the topology's tasks on an agent; a failing critical hook aborts the transition with its stderr; one past its timeout is stopped", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const log = join(mesh.home.dir, "hooks.log");
  const marker = join(mesh.home.dir, "checked-once");
  const on = script(mesh, "on.sh", `echo "task $SHOAL_ENV_EVENT" >> ${log}`);
  const check = script(
    mesh,
    "check.sh",
    `[ -e ${marker} ] || { touch ${marker}; echo "disk full" >&2; exit 4; }`,
  );
  writeTopology(
    mesh.home.dir,
    "h.xml",
    `<topology name="h">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <decltask name="Check"><exe reachable="true">${check}</exe></decltask>
  <decltask name="Where"><exe reachable="true">sh -c 'echo "where $SHOAL_TASK_SANDBOX $DDS_TASK_PATH $SHOAL_ENV_TRIGGER" &gt;&gt; ${log}'</exe></decltask>
  <decltask name="Slow"><exe reachable="true">sleep 600</exe></decltask>
  <main name="main"><task>D</task><task>Check</task><task>Where</task><task>Slow</task></main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "h.env.json");
  Deno.writeTextFileSync(
    envFile,
    JSON.stringify({
      topology: "h.xml",
      control: [
        { tasks: "main/D_0", mode: "direct" },
        { tasks: "main/Check_0", mode: "hook", trigger: "before_CONFIGURE" },
        { tasks: "main/Where_0", mode: "hook", trigger: "after_CONFIGURE", critical: false },
        { tasks: "main/Slow_0", mode: "hook", trigger: "before_START_ACTIVITY", timeout: 1, critical: false },
      ],
    }),
  );
  assertEquals((await mesh.run(["env", "create", envFile])).code, 0);
  const hookTasks = async () => (await ps(mesh)).filter((t) => /Check|Where|Slow/.test(t.path));
  assertEquals(await hookTasks(), [], "hooks of other moments do not run at DEPLOY");

  // The critical hook fails: CONFIGURE stops there, the direct task never saw it.
  const failed = await mesh.run(["env", "control", "h", "-e", "CONFIGURE"], { timeoutMs: 90_000 });
  assertEquals(failed.code, 1, failed.stderr);
  assertStringIncludes(
    failed.stderr,
    'Hook "main/Check_0" (before_CONFIGURE) failed: exit code 4: disk full',
  );
  assertEquals((await show(mesh, "h")).state, "ERROR");
  assertEquals(lines(log), []);
  await control(mesh, "h", "RECOVER");

  const env = await control(mesh, "h", "CONFIGURE");
  assertEquals(env.state, "CONFIGURED");
  const ran = lines(log);
  assertEquals(ran.slice(0, 2), ["task RECOVER", "task CONFIGURE"]);
  // The after_CONFIGURE hook ran in an agent's sandbox, as the topology's task, with the agent's DDS variables.
  const [word, sandbox, path, trigger] = ran[2]!.split(" ");
  assertEquals([word, path, trigger], ["where", "main/Where_0", "after_CONFIGURE"]);
  assert(
    mesh.agents.some((a) => sandbox!.startsWith(join(a.dataDir, "tasks", "h"))),
    `${sandbox} is an agent's sandbox`,
  );

  // A hook past its timeout is stopped; a non-critical one is a warning.
  const started = await control(mesh, "h", "START_ACTIVITY");
  assertEquals(started.state, "RUNNING");
  assert(
    (started as unknown as { warnings: string[] }).warnings.some((w) =>
      w.includes('Hook "main/Slow_0" (before_START_ACTIVITY) failed: timed out after 1 s')
    ),
    JSON.stringify(started),
  );
  // Every hook left the placement once it ended.
  assertEquals((await hookTasks()).filter((t) => t.state === "running"), []);
  assertEquals((await mesh.run(["env", "destroy", "h", "--force"])).code, 0);

  // A critical DEPLOY hook that fails aborts the DEPLOY: ERROR with its reason, no task started.
  const noDisk = script(mesh, "no-disk.sh", `echo "no disk on /data" >&2; exit 5`);
  writeTopology(
    mesh.home.dir,
    "d.xml",
    `<topology name="d">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <decltask name="Check"><exe reachable="true">${noDisk}</exe></decltask>
  <main name="main"><task>D</task><task>Check</task></main>
</topology>`,
  );
  const deployFile = join(mesh.home.dir, "d.env.json");
  Deno.writeTextFileSync(
    deployFile,
    JSON.stringify({
      topology: "d.xml",
      control: [
        { tasks: "main/D_0", mode: "direct" },
        { tasks: "main/Check_0", mode: "hook", trigger: "before_DEPLOY" },
      ],
    }),
  );
  const refused = await mesh.run(["env", "create", deployFile], { timeoutMs: 60_000 });
  assertEquals(refused.code, 1, refused.stderr);
  assertStringIncludes(
    refused.stderr,
    'DEPLOY of "d" failed, the environment is in ERROR: Hook "main/Check_0" (before_DEPLOY) failed: exit code 5: no disk on /data',
  );
  const d = await show(mesh, "d");
  assertEquals([d.state, d.lastTransition?.event, d.lastTransition?.ok], ["ERROR", "DEPLOY", false]);
  assertStringIncludes(d.reason ?? "", "no disk on /data");
  assertEquals((await ps(mesh)).filter((t) => t.path === "main/D_0" && t.state === "running"), []);
  assertEquals((await mesh.run(["env", "destroy", "d", "--force"])).code, 0);
});

/** `shoal args… --session` on a terminal (util-linux `script`): what the terminal showed, escapes removed. */
async function onTerminal(mesh: TestMesh, args: string[]): Promise<{ code: number; screen: string }> {
  const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const line = [SHOAL_BIN, ...args, "--session", mesh.session].map(quote).join(" ");
  const out = await new Deno.Command("script", {
    args: ["-qefc", line, "/dev/null"],
    env: { ...mesh.home.env, TERM: "xterm", COLUMNS: "120" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  // deno-lint-ignore no-control-regex
  const screen = new TextDecoder().decode(out.stdout).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "\n");
  return { code: out.code, screen };
}

Deno.test("env: on a terminal, control shows a bar that moves per task answer; with --json, none", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  // Task i answers CONFIGURE 3·i s after it got it: three answers, well apart.
  const on = script(
    mesh,
    "on.sh",
    `i=\${DDS_TASK_PATH##*_}; [ "$SHOAL_ENV_EVENT" = CONFIGURE ] && sleep $((i * 3)); true`,
  );
  writeTopology(
    mesh.home.dir,
    "p.xml",
    `<topology name="p">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <main name="main"><group name="g" n="3"><task>D</task></group></main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "p.env.json");
  Deno.writeTextFileSync(
    envFile,
    JSON.stringify({ topology: "p.xml", control: [{ tasks: ".*", mode: "direct" }] }),
  );
  assertEquals((await mesh.run(["env", "create", envFile])).code, 0);
  assertEquals((await show(mesh, "p")).tasks.length, 3);
  const shown = await onTerminal(mesh, ["env", "control", "p", "-e", "CONFIGURE"]);
  assertEquals(shown.code, 0, shown.screen);
  for (const n of [0, 1, 2]) {
    assert(
      new RegExp(`CONFIGURE: tasks answered \\[[^\\]\n]*\\] ${n}/3`).test(shown.screen),
      `the bar showed ${n}/3: ${shown.screen}`,
    );
  }
  assertStringIncludes(shown.screen, "3/3 task(s) answered ok");
  const json = await onTerminal(mesh, ["env", "control", "p", "-e", "RESET", "--json"]);
  assertEquals(json.code, 0, json.screen);
  assert(!json.screen.includes("tasks answered"), json.screen);
  assertEquals(JSON.parse(json.screen.slice(json.screen.indexOf("{"))).state, "DEPLOYED");
  assertEquals((await mesh.run(["env", "destroy", "p"])).code, 0);
});

Deno.test("env: a task failing CONFIGURE sends it to ERROR; RECOVER brings it to DEPLOYED; CONFIGURE then works", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 2 });
  const marker = join(mesh.home.dir, "failed-once");
  const on = script(
    mesh,
    "on.sh",
    `if [ "$SHOAL_ENV_EVENT" = CONFIGURE ] && [ ! -e ${marker} ]; then touch ${marker}; echo "no calibration" >&2; exit 3; fi`,
  );
  writeTopology(
    mesh.home.dir,
    "f.xml",
    `<topology name="f">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <main name="main"><task>D</task></main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "f.env.yaml");
  Deno.writeTextFileSync(envFile, "topology: f.xml\ncontrol:\n  - tasks: .*\n    mode: direct\n");
  assertEquals((await mesh.run(["env", "create", envFile])).code, 0);
  const failed = await mesh.run(["env", "control", "f", "-e", "CONFIGURE"]);
  assertEquals(failed.code, 1);
  assertStringIncludes(failed.stderr, 'Task "main/D_0" failed CONFIGURE: no calibration');
  let env = await show(mesh, "f");
  assertEquals([env.state, states(env)["main/D_0"]], ["ERROR", "ERROR"]);
  assertStringIncludes(env.reason ?? "", "no calibration");
  env = await control(mesh, "f", "RECOVER");
  assertEquals([env.state, states(env)["main/D_0"]], ["DEPLOYED", "STANDBY"]);
  env = await control(mesh, "f", "CONFIGURE");
  assertEquals(env.state, "CONFIGURED");
  // A GO_ERROR that reached ERROR succeeded: the control's answer and the replicated history agree, and
  // the history says why.
  const go = await control(mesh, "f", "GO_ERROR", "--arg", "reason=beam dump");
  assertEquals([go.state, go.transition.event, go.transition.ok], ["ERROR", "GO_ERROR", true]);
  const shown = await show(mesh, "f");
  const last = shown.lastTransition!;
  assertEquals([last.event, last.ok, last.startedAt, last.reason], [
    "GO_ERROR",
    true,
    go.transition.startedAt,
    go.transition.reason,
  ]);
  assertStringIncludes(last.reason ?? "", "GO_ERROR asked by");
  assertStringIncludes(last.reason ?? "", "beam dump");
  assertEquals(
    shown.history.filter((h) => h.event === "CONFIGURE").map((h) => h.ok),
    [false, true],
    "the failed CONFIGURE is recorded as failed",
  );
  assertEquals((await mesh.run(["env", "destroy", "f", "--force"])).code, 0);
});

Deno.test("env: a non-critical crash during RUNNING is reported and it stays RUNNING; a critical one sends it to ERROR; RECOVER restarts it", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const on = script(mesh, "on.sh", "true");
  writeTopology(
    mesh.home.dir,
    "c.xml",
    `<topology name="c">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <decltask name="Helper"><exe reachable="true">sleep 600</exe></decltask>
  <main name="main"><task>D</task><task>Helper</task></main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "c.env.json");
  Deno.writeTextFileSync(
    envFile,
    JSON.stringify({
      topology: "c.xml",
      control: [{ tasks: "main/D_0", mode: "direct" }, {
        tasks: "main/Helper_0",
        mode: "basic",
        critical: false,
      }],
    }),
  );
  await using monitor = await watchEvents(mesh);
  const created = await mesh.run(["env", "create", envFile, "--auto", "START_ACTIVITY", "--json"], {
    timeoutMs: 60_000,
  });
  assertEquals(created.code, 0, created.stderr);
  assertEquals(JSON.parse(created.stdout).state, "RUNNING");
  const pidOf = async (path: string) =>
    (await ps(mesh)).find((t) => t.path === path && t.state === "running")?.pid;
  process.kill((await waitFor(() => pidOf("main/Helper_0")))!, "SIGKILL");
  let env = await waitFor(async () => {
    const e = await show(mesh, "c");
    return states(e)["main/Helper_0"] === "ERROR" ? e : undefined;
  }, { what: "the non-critical crash to be recorded" });
  assertEquals(env.state, "RUNNING");
  assertStringIncludes(
    env.tasks.find((t) => t.path === "main/Helper_0")!.reason ?? "",
    "crashed: was killed by SIGKILL",
  );
  process.kill((await pidOf("main/D_0"))!, "SIGKILL");
  env = await waitFor(async () => {
    const e = await show(mesh, "c");
    return e.state === "ERROR" ? e : undefined;
  }, { what: "the critical crash to send it to ERROR" });
  assertStringIncludes(env.reason ?? "", 'Critical task "main/D_0" was killed by SIGKILL in RUNNING');
  // What the monitor topic said, in order.
  await monitor.next((e) => e.type === "env:state" && e.state === "ERROR", { what: "env:state ERROR" });
  const seen = monitor.events().filter((e) => e.envId === "c");
  assertEquals(
    seen.filter((e) => e.type === "env:state").map((e) => e.state),
    // the claim of DEPLOY (STANDBY), its outcome, CONFIGURE, START_ACTIVITY; the non-critical crash is no change
    ["STANDBY", "DEPLOYED", "CONFIGURED", "RUNNING", "ERROR"],
  );
  assertEquals(
    seen.filter((e) => e.type === "env:transition").map((e) => `${e.event}:${e.ok}`),
    ["DEPLOY:true", "CONFIGURE:true", "START_ACTIVITY:true", "GO_ERROR:true"],
  );
  assert(seen.some((e) => e.type === "task:state" && e.path === "main/Helper_0" && e.state === "ERROR"));
  // A transition's task states travel as one event per state; the monitor shows one per task.
  assert(seen.every((e) => e.type !== "task:state" || (typeof e.path === "string" && !("paths" in e))));
  for (const path of ["main/D_0", "main/Helper_0"]) {
    assert(seen.some((e) => e.type === "task:state" && e.path === path && e.state === "CONFIGURED"), path);
  }
  // RECOVER starts the crashed direct task again (a new process) and stops the basic one with the run.
  const crashedPid = (await ps(mesh)).find((t) => t.path === "main/D_0")?.pid;
  env = await control(mesh, "c", "RECOVER");
  assertEquals(env.state, "DEPLOYED");
  assertEquals(states(env)["main/D_0"], "STANDBY");
  // As every peer shows it: the crash's reason is gone with it.
  const shown = await show(mesh, "c");
  assertEquals([shown.state, states(shown)["main/D_0"]], ["DEPLOYED", "STANDBY"]);
  assertEquals(shown.tasks.find((t) => t.path === "main/D_0")!.reason, undefined);
  const again = (await ps(mesh)).filter((t) => t.path === "main/D_0" && t.state === "running");
  assertEquals(again.length, 1, "the direct task runs again, once");
  assert(again[0]!.pid !== crashedPid);
  assertEquals((await ps(mesh)).filter((t) => t.path === "main/Helper_0" && t.state === "running").length, 0);
  // The restarted task takes part in the next run.
  env = await control(mesh, "c", "CONFIGURE");
  assertEquals(env.state, "CONFIGURED");
  env = await control(mesh, "c", "START_ACTIVITY");
  assertEquals([env.state, states(env)["main/D_0"], states(env)["main/Helper_0"]], [
    "RUNNING",
    "RUNNING",
    "RUNNING",
  ]);
  // Its topology changes through the environment only.
  const upd = await mesh.run(["topology", "update", join(mesh.home.dir, "c.xml"), "--id", "c"]);
  assertEquals(upd.code, 2, upd.stderr);
  assertStringIncludes(upd.stderr, 'belongs to environment "c" (RUNNING)');
  assertStringIncludes(
    upd.stderr,
    "`shoal env destroy c --force`, then `shoal env create` with the new file",
  );
  // Named or not (the only active topology), and nothing was touched.
  const bare = await mesh.run(["topology", "update", join(mesh.home.dir, "c.xml")]);
  assertEquals(bare.code, 2, bare.stderr);
  assertStringIncludes(bare.stderr, 'Topology "c" belongs to environment "c" (RUNNING)');
  assertEquals((await show(mesh, "c")).state, "RUNNING");
  // Stopping it is refused the same way, named or not; with --force its tasks stop and it goes to ERROR.
  for (const args of [["--id", "c"], []]) {
    const stop = await mesh.run(["topology", "stop", ...args]);
    assertEquals(stop.code, 2, stop.stderr);
    assertStringIncludes(
      stop.stderr,
      'Topology "c" belongs to environment "c" (RUNNING); stopping it would leave the environment without its ' +
        "tasks. End it through the environment: `shoal env control c -e STOP_ACTIVITY`, then `-e EXIT`, or " +
        "`shoal env destroy c --force`; or stop it anyway with --force",
    );
  }
  assertEquals((await show(mesh, "c")).state, "RUNNING");
  assertEquals((await ps(mesh)).filter((t) => t.state === "running").length, 2, "nothing was stopped");
  const forced = await mesh.run(["topology", "stop", "--id", "c", "--force", "--grace", "1"]);
  assertEquals(forced.code, 0, forced.stderr);
  assertStringIncludes(forced.stdout, 'environment "c" is ERROR');
  env = await show(mesh, "c");
  assertEquals([env.state, env.lastTransition?.event], ["ERROR", "GO_ERROR"]);
  assertStringIncludes(env.reason ?? "", "Topology stopped outside the environment");
  assertEquals(states(env), { "main/D_0": "ERROR", "main/Helper_0": "ERROR" });
  assertEquals((await ps(mesh)).filter((t) => t.state === "running"), []);
  assertEquals((await mesh.run(["env", "destroy", "c", "--force"])).code, 0);
});

Deno.test("env: a controller killed mid-transition leaves ERROR with 'controller lost' on every peer", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const on = script(mesh, "on.sh", `[ "$SHOAL_ENV_EVENT" = CONFIGURE ] && sleep 30; true`);
  writeTopology(
    mesh.home.dir,
    "k.xml",
    `<topology name="k">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <main name="main"><task>D</task></main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "k.env.json");
  Deno.writeTextFileSync(
    envFile,
    JSON.stringify({
      topology: "k.xml",
      timeouts: { CONFIGURE: 5 },
      control: [{ tasks: ".*", mode: "direct" }],
    }),
  );
  assertEquals((await mesh.run(["env", "create", envFile])).code, 0);
  const controller = new Deno.Command(SHOAL_BIN, {
    args: ["env", "control", "k", "-e", "CONFIGURE", "--session", mesh.session],
    env: mesh.home.env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor(async () => (await show(mesh, "k")).controller !== null, { what: "the controller to claim" });
  controller.kill("SIGKILL");
  await controller.status;
  for (const a of mesh.agents) {
    const env = await waitFor(async () => {
      const e = await show(mesh, "k", a.id);
      return e.state === "ERROR" ? e : undefined;
    }, { timeout: 30_000, what: `agent ${a.id} to see ERROR` });
    assertStringIncludes(env.reason ?? "", "Controller lost during CONFIGURE");
    assertEquals(env.controller, null);
  }
  assert((await mesh.run(["env", "destroy", "k", "--force"])).code === 0);
});

Deno.test("env: of two controllers sending at once one wins, the other is refused; a task raises GO_ERROR itself", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const log = join(mesh.home.dir, "seen.log");
  const on = script(
    mesh,
    "on.sh",
    `echo "$SHOAL_ENV_EVENT" >> ${log}
[ "$SHOAL_ENV_EVENT" = CONFIGURE ] && sleep 2
[ "$SHOAL_ENV_EVENT" = START_ACTIVITY ] && (sleep 1; $SHOAL env go-error "link down on CRU 3") > /dev/null 2>&1 &
true`,
  );
  writeTopology(
    mesh.home.dir,
    "r.xml",
    `<topology name="r">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <main name="main"><task>D</task></main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "r.env.json");
  Deno.writeTextFileSync(
    envFile,
    JSON.stringify({ topology: "r.xml", control: [{ tasks: ".*", mode: "direct" }] }),
  );
  assertEquals((await mesh.run(["env", "create", envFile])).code, 0);
  const both = await Promise.all([
    mesh.run(["env", "control", "r", "-e", "CONFIGURE"]),
    mesh.run(["env", "control", "r", "-e", "CONFIGURE"]),
  ]);
  assertEquals(both.map((r) => r.code).sort(), [0, 1]);
  const loser = both.find((r) => r.code === 1)!;
  assertStringIncludes(loser.stderr, 'Environment "r" is busy: CONFIGURE asked by');
  assertEquals(lines(log), ["CONFIGURE"]);
  assertEquals((await show(mesh, "r")).state, "CONFIGURED");
  await control(mesh, "r", "START_ACTIVITY");
  const env = await waitFor(async () => {
    const e = await show(mesh, "r");
    return e.state === "ERROR" ? e : undefined;
  }, { what: "the task's GO_ERROR" });
  assertEquals(env.reason, 'Task "main/D_0" raised GO_ERROR: link down on CRU 3');
  assertEquals(states(env)["main/D_0"], "ERROR");
  assertEquals((await mesh.run(["env", "destroy", "r", "--force"])).code, 0);
});

Deno.test("env: a hook needs a slot: create on a mesh that will have none left says so, and the hook then fails to start", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 1 });
  const on = script(mesh, "on.sh", "true");
  writeTopology(
    mesh.home.dir,
    "s.xml",
    `<topology name="s">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <decltask name="H"><exe reachable="true">true</exe></decltask>
  <main name="main"><task>D</task><task>H</task></main>
</topology>`,
  );
  const envFile = join(mesh.home.dir, "s.env.json");
  Deno.writeTextFileSync(
    envFile,
    JSON.stringify({
      topology: "s.xml",
      control: [{ tasks: "main/D_0", mode: "direct" }, {
        tasks: "main/H_0",
        mode: "hook",
        trigger: "before_CONFIGURE",
      }],
    }),
  );
  const created = await mesh.run(["env", "create", envFile], { timeoutMs: 60_000 });
  assertEquals(created.code, 0, created.stderr);
  assertStringIncludes(
    created.stdout,
    "warning: Hooks and basic tasks take up to 1 slot(s) while they run, beyond the 1 of DEPLOY, and 0 will be free",
  );
  const failed = await mesh.run(["env", "control", "s", "-e", "CONFIGURE"], { timeoutMs: 60_000 });
  assertEquals(failed.code, 1, failed.stderr);
  assertStringIncludes(failed.stderr, 'Hook "main/H_0" (before_CONFIGURE) failed: did not start');
  assertEquals((await show(mesh, "s")).state, "ERROR");
  assertEquals((await mesh.run(["env", "destroy", "s", "--force"])).code, 0);
});

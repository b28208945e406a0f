import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import { RunnerClosedError, TaskAlreadyRunningError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { createTaskRunner } from "./runner.ts";
import type { TaskRunner, TaskRunnerInit } from "./runner.ts";
import type { RunnerEvent, TaskSpec } from "../wire/mod.ts";

const TOPO = "topo1";

/**
 * A runner over a fresh temp dir; disposing stops every task and removes the dir. Its grace is long: a stop
 * returns as soon as the tasks are gone, and a loaded machine can take seconds to deliver SIGTERM to
 * hundreds of processes and reap them, which a short grace would turn into SIGKILLs (`killed` > 0).
 */
async function tempRunner(init: Partial<TaskRunnerInit> = {}) {
  const workDir = await Deno.makeTempDir({ prefix: "shoal-runner-" });
  const runner = createTaskRunner({
    workDir,
    log: createLogger({ stderr: false }),
    graceMs: 30_000,
    ...init,
  });
  const events: RunnerEvent[] = [];
  runner.events.on((e) => events.push(e));
  return {
    runner,
    workDir,
    events,
    async [Symbol.asyncDispose]() {
      await runner[Symbol.asyncDispose]();
      await Deno.remove(workDir, { recursive: true });
    },
  };
}

function spec(path: string, exe: string, more: Partial<TaskSpec> = {}): TaskSpec {
  const name = path.split("/").at(-1)!.replace(/_\d+$/, "");
  return {
    topologyId: TOPO,
    path,
    id: "4242",
    name,
    index: 3,
    groupName: "group1",
    exe,
    maxRestarts: 0,
    slotId: "slot-7",
    sessionId: "sess-1",
    ...more,
  };
}

function exitedOf(runner: TaskRunner, path: string) {
  return waitFor(() => {
    const s = runner.get(TOPO, path);
    return s && (s.state === "exited" || s.state === "failed") ? s : undefined;
  }, { timeout: 10_000, what: `task "${path}" to exit` });
}

/** True while `pid` is alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Pids of live processes whose environment names this sandbox. */
function processesOf(sandbox: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const env = Deno.readTextFileSync(`/proc/${e.name}/environ`);
      if (env.split("\0").includes(`SHOAL_TASK_SANDBOX=${sandbox}`) && alive(Number(e.name))) {
        out.push(Number(e.name));
      }
    } catch { /* gone or not ours */ }
  }
  return out;
}

async function pidsIn(file: string, count: number): Promise<number[]> {
  return await waitFor(async () => {
    const text = await Deno.readTextFile(file).catch(() => "");
    const pids = text.split("\n").filter(Boolean).map(Number);
    return pids.length >= count ? pids : undefined;
  }, { what: `${count} pids in ${file}` });
}

Deno.test("runner: a task sees DDS's environment, in a collection or not", async () => {
  await using t = await tempRunner();
  const extraEnv = { SHOAL_SOCKET: "/tmp/x.sock" };
  const a = await t.runner.start(
    spec("main/group1/coll_2/task1_0", "sh -c 'env > env.txt'", {
      collectionName: "coll",
      collectionIndex: 2,
      extraEnv,
    }),
  );
  const b = await t.runner.start(spec("main/task2_0", "sh -c 'env > env.txt'", { groupName: "main" }));
  assertEquals([a.state, b.state], ["running", "running"]);
  await exitedOf(t.runner, a.path);
  await exitedOf(t.runner, b.path);
  const sandbox = `${t.workDir}/tasks/${TOPO}/main_group1_coll_2_task1_0`;
  const env = Object.fromEntries(
    (await Deno.readTextFile(`${sandbox}/env.txt`)).split("\n").filter(Boolean).map((l) => l.split(/=(.*)/s)),
  );
  assertEquals(env.DDS_TASK_ID, "4242");
  assertEquals(env.DDS_TASK_INDEX, "3");
  assertEquals(env.DDS_TASK_NAME, "task1");
  assertEquals(env.DDS_TASK_PATH, "main/group1/coll_2/task1_0");
  assertEquals(env.DDS_GROUP_NAME, "group1");
  assertEquals(env.DDS_COLLECTION_NAME, "coll");
  assertEquals(env.DDS_COLLECTION_INDEX, "2");
  assertEquals(env.DDS_SLOT_ID, "slot-7");
  assertEquals(env.DDS_SESSION_ID, "sess-1");
  assertEquals(env.SHOAL_SOCKET, "/tmp/x.sock");
  assertEquals(env.SHOAL_TASK_SANDBOX, sandbox);
  assertEquals(env.PATH, Deno.env.get("PATH"));
  const other = await Deno.readTextFile(`${t.workDir}/tasks/${TOPO}/main_task2_0/env.txt`);
  assertStringIncludes(other, "DDS_COLLECTION_NAME=\n");
  assert(!other.includes("DDS_COLLECTION_INDEX="), "no DDS_COLLECTION_INDEX outside a collection");
});

Deno.test("runner: quoted arguments, shell lines, env scripts and assets", async () => {
  await using t = await tempRunner();
  const quoted = await t.runner.start(spec("main/q_0", `printf "[%s]" "a b" 'c "d"' e\\ f`));
  const piped = await t.runner.start(spec("main/p_0", "echo $DDS_TASK_NAME | tr a-z A-Z"));
  const sourced = await t.runner.start(
    spec("main/e_0", "printf %s-%s $GREETING $DDS_TASK_INDEX", { env: "GREETING=hello\nexport GREETING" }),
  );
  const asset = await t.runner.start(spec("main/a_0", "./bin/run.sh", {
    files: [
      { name: "bin/run.sh", content: "#!/bin/sh\ncat data.txt\n", mode: 0o755 },
      { name: "data.txt", content: new TextEncoder().encode("asset-ok") },
    ],
  }));
  const out = async (path: string) => await Deno.readTextFile((await exitedOf(t.runner, path)).stdoutFile!);
  assertEquals(await out(quoted.path), `[a b][c "d"][e f]`);
  assertEquals(await out(piped.path), "P\n");
  assertEquals(await out(sourced.path), "hello-3");
  assertEquals(await out(asset.path), "asset-ok");
  assertEquals(t.runner.get(TOPO, asset.path)?.exitCode, 0);
  const logName = quoted.stdoutFile!.slice(quoted.stdoutFile!.lastIndexOf("/") + 1);
  assert(/^main_q_0\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.out$/.test(logName), logName);
  assertEquals(quoted.stderrFile, quoted.stdoutFile!.replace(/\.out$/, ".err"));
});

Deno.test("runner: a missing executable fails with a reason and the runner keeps working", async () => {
  await using t = await tempRunner();
  const a = await t.runner.start(spec("main/m_0", "no-such-exe-shoal --x"));
  assertEquals(a.state, "failed");
  assertEquals(a.reason, `Executable "no-such-exe-shoal" not found in PATH (ENOENT)`);
  const b = await t.runner.start(spec("main/m_1", "./missing"));
  assertEquals(b.reason, `Executable "./missing" not found (ENOENT)`);
  const c = await t.runner.start(spec("main/f_0", "true", { files: [{ name: "../evil", content: "x" }] }));
  assertEquals(c.state, "failed");
  assertStringIncludes(c.reason!, `"../evil"`);
  assertEquals(t.events.filter((e) => e.type === "task:failed").length, 3);
  const ok = await t.runner.start(spec("main/m_0", "true"));
  assertEquals(ok.state, "running");
  assertEquals((await exitedOf(t.runner, ok.path)).exitCode, 0);
});

Deno.test("runner: the same topology and path cannot run twice", async () => {
  await using t = await tempRunner();
  await t.runner.start(spec("main/d_0", "sleep 1000"));
  await assertRejects(() => t.runner.start(spec("main/d_0", "sleep 1000")), TaskAlreadyRunningError);
  assertEquals(await t.runner.stop({ paths: ["main/d_0"] }), { stopped: 1, killed: 0 });
  assertEquals((await t.runner.start(spec("main/d_0", "sleep 1000"))).state, "running");
});

Deno.test("runner: a crashing task is restarted exactly maxRestarts times", async () => {
  await using t = await tempRunner();
  const s = await t.runner.start(
    spec("main/c_0", "sh -c 'echo run >> runs.txt; exit 3'", { maxRestarts: 2 }),
  );
  const final = await exitedOf(t.runner, s.path);
  assertEquals(final.restarts, 2);
  assertEquals(final.exitCode, 3);
  assertStringIncludes(final.reason!, "restart limit of 2 reached");
  const kinds = t.events.map((e) => e.type === "task:exited" ? `exited:${e.code}:${e.willRestart}` : e.type);
  assertEquals(kinds, [
    "task:started",
    "exited:3:true",
    "task:started",
    "exited:3:true",
    "task:started",
    "exited:3:false",
  ]);
  const runs = await Deno.readTextFile(`${t.workDir}/tasks/${TOPO}/main_c_0/runs.txt`);
  assertEquals(runs, "run\nrun\nrun\n");
});

Deno.test("runner: a task that exits 0 or is stopped is not restarted", async () => {
  await using t = await tempRunner();
  const a = await t.runner.start(spec("main/z_0", "true", { maxRestarts: 2 }));
  assertEquals((await exitedOf(t.runner, a.path)).restarts, 0);
  const b = await t.runner.start(spec("main/s_0", "sleep 1000", { maxRestarts: 2 }));
  assertEquals(await t.runner.stop({ topologyId: TOPO }), { stopped: 1, killed: 0 });
  const status = t.runner.get(TOPO, b.path)!;
  assertEquals([status.state, status.restarts], ["stopped", 0]);
  const exited = t.events.filter((e) => e.type === "task:exited" && e.path === b.path);
  assertEquals(exited.map((e) => e.type === "task:exited" && [e.stopped, e.willRestart]), [[true, false]]);
});

Deno.test("runner: stop kills the whole tree, setsid'd and orphaned descendants included", async () => {
  await using t = await tempRunner();
  // A grandchild in its own session, a child in the group, and an orphan in its own session.
  const exe = `sh -c 'setsid sleep 1000 & echo $! >> pids; sleep 1000 & echo $! >> pids; ` +
    `(setsid sleep 1001 & echo $! >> pids); wait'`;
  const s = await t.runner.start(spec("main/tree_0", exe));
  const sandbox = `${t.workDir}/tasks/${TOPO}/main_tree_0`;
  const pids = await pidsIn(`${sandbox}/pids`, 3);
  assert(pids.every(alive), "all descendants run before the stop");
  assertEquals(await t.runner.stop({ topologyId: TOPO }), { stopped: 1, killed: 0 });
  assertEquals(pids.filter(alive), []);
  assert(!alive(s.pid!), "the task itself is gone");
  assertEquals(processesOf(sandbox), []);
  assertEquals(t.runner.get(TOPO, s.path)?.state, "stopped");
});

Deno.test("runner: a task that ignores SIGTERM is SIGKILLed after the grace period", async () => {
  await using t = await tempRunner({ graceMs: 200 });
  const s = await t.runner.start(spec("main/trap_0", `sh -c 'trap "" TERM; touch ready; sleep 1000 & wait'`));
  const sandbox = `${t.workDir}/tasks/${TOPO}/main_trap_0`;
  await waitFor(() => Deno.statSync(`${sandbox}/ready`), { what: "the trap to be set" });
  assertEquals(await t.runner.stop({ paths: [s.path] }), { stopped: 1, killed: 1 });
  const status = t.runner.get(TOPO, s.path)!;
  assertEquals([status.state, status.signal], ["stopped", "SIGKILL"]);
  assertEquals(processesOf(sandbox), []);
});

Deno.test("runner: stopping 200 tasks at once leaves none behind", async () => {
  await using t = await tempRunner();
  const started = await Promise.all(
    Array.from({ length: 200 }, (_, i) => t.runner.start(spec(`main/many_${i}`, "sleep 1000", { index: i }))),
  );
  assert(started.every((s) => s.state === "running" && s.pid));
  // killed: 0 says SIGTERM alone ended every sleep, within the (long) grace.
  assertEquals(await t.runner.stopAll(), { stopped: 200, killed: 0 });
  assertEquals(started.filter((s) => alive(s.pid!)).map((s) => s.pid), []);
  assert(t.runner.list().every((s) => s.state === "stopped"));
  assertEquals(t.runner.forget(), 200);
  assertEquals(t.runner.list(), []);
});

Deno.test("runner: a task stopped while starting never spawns; a disposed runner starts nothing", async () => {
  await using t = await tempRunner();
  const starting = t.runner.start(spec("main/early_0", "sleep 1000"));
  assertEquals(t.runner.get(TOPO, "main/early_0")?.state, "starting");
  assertEquals(await t.runner.stop({ paths: ["main/early_0"] }), { stopped: 1, killed: 0 });
  const status = await starting;
  assertEquals([status.state, status.pid], ["stopped", undefined]);
  assertEquals(t.events.filter((e) => e.type === "task:started"), []);
  await t.runner[Symbol.asyncDispose]();
  await assertRejects(() => t.runner.start(spec("main/late_0", "sleep 1000")), RunnerClosedError);
});

Deno.test("runner: a task waits for its `before` (starting meanwhile), then runs; a rejection fails it with the reason", async () => {
  await using r = await tempRunner();
  const { promise: gate, resolve } = Promise.withResolvers<void>();
  const started = r.runner.start(spec("main/Wait_0", "true"), { before: gate });
  assertEquals(r.runner.get(TOPO, "main/Wait_0")?.state, "starting");
  resolve();
  assertEquals((await started).state, "running");
  assertEquals((await exitedOf(r.runner, "main/Wait_0")).exitCode, 0);
  const failed = await r.runner.start(spec("main/Miss_0", "true"), {
    before: Promise.reject(new Error('Staged name "calib" is held by no agent')),
  });
  assertEquals([failed.state, failed.reason], ["failed", 'Staged name "calib" is held by no agent']);
  assert(r.events.some((e) => e.type === "task:failed" && e.path === "main/Miss_0"));
});

Deno.test("runner: a task stopped while it waits for its `before` is stopped at once and never spawned", async () => {
  await using r = await tempRunner();
  const never = new Promise<void>(() => {});
  const started = r.runner.start(spec("main/Wait_0", "true"), { before: never });
  const res = await r.runner.stop({ topologyId: TOPO });
  assertEquals(res.killed, 0);
  assertEquals((await started).state, "stopped");
  assertEquals(r.events.filter((e) => e.type === "task:started").length, 0);
});

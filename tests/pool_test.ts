/**
 * The shared pool with real agents: topologies queued at different priorities compete for the slots,
 * the higher first and each whole or not at all; equal priorities take turns by share group; the queue
 * is served by the scheduler whichever agent took the request.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { spawnAgent, startMesh, type TestMesh, writeTopology } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

/** A topology of `n` tasks that each log their start and end (ms) to `log`, running `seconds`. */
function logged(dir: string, name: string, n: number, seconds: number): string {
  const script = join(dir, "task.sh");
  writeFileSync(
    script,
    `#!/bin/sh\necho "start $1 $(date +%s%3N)" >> "$2"\nsleep "$3"\necho "end $1 $(date +%s%3N)" >> "$2"\n`,
    { mode: 0o755 },
  );
  return writeTopology(
    dir,
    `${name}.xml`,
    `<topology name="${name}">
  <decltask name="T"><exe reachable="true">${script} ${name} ${
      join(dir, "times.log")
    } ${seconds}</exe></decltask>
  <main name="main"><group name="g" n="${n}"><task>T</task></group></main>
</topology>`,
  );
}

/** Start and end times per topology, from the tasks' shared log. */
function times(dir: string): Map<string, { starts: number[]; ends: number[] }> {
  const out = new Map<string, { starts: number[]; ends: number[] }>();
  let text = "";
  try {
    text = readFileSync(join(dir, "times.log"), "utf8");
  } catch { /* nothing ran yet */ }
  for (const line of text.split("\n").filter(Boolean)) {
    const [what, name, ms] = line.split(" ");
    const t = out.get(name!) ?? out.set(name!, { starts: [], ends: [] }).get(name!)!;
    (what === "start" ? t.starts : t.ends).push(Number(ms));
  }
  return out;
}

interface PoolJson {
  scheduler: string;
  queue: { id: string; position: number | null; waiting: string; priority: number }[];
  running: { id: string; done: number; all: number; agents: number; slots: number }[];
  finished: { id: string; state: string; startedAt: number | null; endedAt: number | null }[];
  agents: Record<string, { id: string }[]>;
}

async function pool(mesh: TestMesh): Promise<PoolJson> {
  const r = await mesh.run(["pool", "--json"]);
  if (r.code !== 0) throw new Error(`shoal pool failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PoolJson;
}

async function queue(mesh: TestMesh, file: string, ...args: string[]): Promise<void> {
  const r = await mesh.run(["topology", "activate", file, "--queue", "--no-wait", ...args]);
  assertEquals(r.code, 0, r.stderr);
}

Deno.test("pool: a higher-priority topology starts first, the other once slots free, neither partially", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  const dir = mesh.home.dir;
  const filler = logged(dir, "filler", 4, 600);
  const low = logged(dir, "low", 4, 2);
  const high = logged(dir, "high", 3, 2);
  // The filler takes every slot; then low is queued before high.
  await queue(mesh, filler);
  await waitFor(() => (times(dir).get("filler")?.starts.length ?? 0) === 4, {
    timeout: 15_000,
    what: "the filler to run",
  });
  await queue(mesh, low);
  await queue(mesh, high, "--priority", "5");
  const p = await pool(mesh);
  assertEquals(p.queue.map((q) => q.id), ["high", "low"], "high ahead of low, though queued later");
  assert(p.queue[0]!.waiting.startsWith("needs 3 free slot(s)"), p.queue[0]!.waiting);
  assertEquals(p.queue[1]!.waiting, 'behind "high"');
  // The human view says the same.
  const human = await mesh.run(["pool"]);
  assertEquals(human.code, 0, human.stderr);
  assert(/1\s+high\s+5/.test(human.stdout), human.stdout);
  // DIANE's "work to do": the scheduler logs a line per topology every 10 s in its agent.log.
  const schedulerLog = join(mesh.agents.find((a) => a.id === p.scheduler)!.dataDir, "agent.log");
  const poolLines = () =>
    readFileSync(schedulerLog, "utf8").split("\n").filter((l) => / INFO +pool topology=/.test(l));
  await waitFor(
    () =>
      poolLines().some((l) => l.endsWith(" pool topology=filler agents=2 slots=4 done=0 all=4")) &&
      poolLines().some((l) =>
        / pool topology=high agents=0 slots=0 done=0 all=3 queued=1 priority=5 /.test(l)
      ),
    { timeout: 30_000, what: "the pool log lines", detail: () => poolLines().join("\n") },
  );
  assert(/^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(poolLines()[0]!), "each line starts with its timestamp");
  // Stopping the filler frees its slots (and makes it done).
  const freedAt = Date.now();
  const stop = await mesh.run(["topology", "stop", "--id", "filler", "--grace", "1"]);
  assertEquals(stop.code, 0, stop.stderr);

  await waitFor(async () => (await pool(mesh)).finished.filter((f) => f.state === "done").length === 3, {
    timeout: 45_000,
    what: "all three topologies to finish",
  });
  const t = times(dir);
  assertEquals(t.get("filler")?.starts.length, 4);
  for (const [name, n] of [["high", 3], ["low", 4]] as const) {
    assertEquals(t.get(name)?.starts.length, n, `${name} ran every task exactly once`);
    assertEquals(t.get(name)?.ends.length, n, `${name}'s tasks all ended`);
  }
  const first = (name: string) => Math.min(...t.get(name)!.starts);
  const lastEnd = (name: string) => Math.max(...t.get(name)!.ends);
  // High had 3 of 4 slots and low needs 4: low waits until high is over, never starting a part of itself.
  assert(
    first("high") >= freedAt,
    "high started only when the filler freed slots",
  );
  assert(
    first("low") >= lastEnd("high") - 50,
    `low started ${lastEnd("high") - first("low")} ms before high ended`,
  );
  const spread = (name: string) => Math.max(...t.get(name)!.starts) - first(name);
  assert(spread("low") < 2_000 && spread("high") < 2_000, "each topology's tasks started together");
  const done = new Map((await pool(mesh)).finished.map((f) => [f.id, f]));
  assert(done.get("high")!.startedAt! < done.get("low")!.startedAt!);
});

Deno.test("pool: equal priorities take turns by share group; a queued topology can be cancelled", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 1 });
  const dir = mesh.home.dir;
  const filler = logged(dir, "filler", 2, 600);
  const a1 = logged(dir, "a1", 2, 1);
  const a2 = logged(dir, "a2", 2, 1);
  const b1 = logged(dir, "b1", 2, 1);
  const gone = logged(dir, "gone", 2, 1);
  await queue(mesh, filler);
  await waitFor(() => (times(dir).get("filler")?.starts.length ?? 0) === 2, { timeout: 15_000 });
  // alice queues two, then bob one: bob's comes second, not third.
  await queue(mesh, a1, "--share", "alice");
  await queue(mesh, a2, "--share", "alice");
  await queue(mesh, b1, "--share", "bob");
  await queue(mesh, gone, "--share", "carol", "--priority", "-1");
  assertEquals((await pool(mesh)).queue.map((q) => q.id), ["a1", "b1", "a2", "gone"]);
  const again = await mesh.run(["topology", "activate", a1, "--queue", "--no-wait"]);
  assertEquals(again.code, 1, "queueing the same ID twice is refused");
  assert(again.stderr.includes('"a1" is queued in the pool already'), again.stderr);
  const cancel = await mesh.run(["pool", "cancel", "gone"]);
  assertEquals(cancel.code, 0, cancel.stderr);
  const stop = await mesh.run(["topology", "stop", "--id", "filler", "--grace", "1"]);
  assertEquals(stop.code, 0, stop.stderr);
  await waitFor(async () => (await pool(mesh)).finished.filter((f) => f.state === "done").length === 4, {
    timeout: 45_000,
    what: "the four topologies to finish",
  });
  const order = (await pool(mesh)).finished.filter((f) => f.state === "done")
    .sort((x, y) => x.startedAt! - y.startedAt!).map((f) => f.id);
  assertEquals(order, ["filler", "a1", "b1", "a2"]);
  assertEquals(times(dir).get("gone"), undefined, "the cancelled topology never ran");
});

Deno.test("pool: the queue outlives the peer that queued it and the scheduler; a bigger pool then serves it", async () => {
  await using mesh = await startMesh({ agents: 3, slots: 1 });
  const dir = mesh.home.dir;
  const big = logged(dir, "big", 4, 600);
  await queue(mesh, big); // the CLI that queued it has left
  const before = await pool(mesh);
  assertEquals(before.queue.map((q) => [q.id, q.waiting.startsWith("larger than the whole pool")]), [[
    "big",
    true,
  ]]);
  // The scheduler dies; an agent with two slots joins: the pool now has four.
  const scheduler = mesh.agents.find((a) => a.id === before.scheduler)!;
  process.kill(scheduler.pid, "SIGKILL");
  const other = mesh.agents.find((a) => a.id !== scheduler.id)!;
  await using extra = spawnAgent(mesh.home, "extra", [
    "--swarm-key",
    mesh.swarmKeyFile,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--bootstrap",
    other.addrs[0]!,
    "--slots",
    "2",
    "--quiet",
  ]);
  await extra.ready();
  await waitFor(() => (times(dir).get("big")?.starts.length ?? 0) === 4, {
    timeout: 45_000,
    what: "the queued topology to start on the new pool",
  }).catch(async (err) => {
    throw new Error(
      `${err.message}\n${JSON.stringify([...times(dir)])}\n${(await mesh.run(["pool"])).stdout}\n${
        (await mesh.run(["info"])).stdout
      }`,
    );
  });
  const after = await waitFor(async () => {
    const p = await pool(mesh);
    return p.running.some((r) => r.id === "big") ? p : undefined;
  }, { timeout: 10_000, what: "the pool to call it running" });
  // Held leases: an attempt on a view that still counted the dead agent started none of its tasks.
  assertEquals(times(dir).get("big")?.starts.length, 4, "every task started once, none of a failed attempt");
  assert(after.scheduler !== scheduler.id, "another agent schedules now");
  assertEquals(after.running.map((r) => [r.id, r.all]), [["big", 4]]);
  // The new pool can be running before the killed agent is found dead (about a second): a stop before then
  // rightly warns that its tasks may still run (exit 6). Here it is known dead first.
  await waitFor(async () => {
    const view = await mesh.viewOf(other);
    return view.members.find((m) => m.id === scheduler.id)?.state === "dead";
  }, { timeout: 15_000, what: "the killed scheduler to be seen dead" });
  const stop = await mesh.run(["topology", "stop", "--id", "big", "--grace", "1"]);
  assertEquals(stop.code, 0, stop.stderr);
  await waitFor(async () => (await pool(mesh)).finished.some((f) => f.id === "big" && f.state === "done"), {
    timeout: 15_000,
    what: "a stopped topology to count as done",
  });
});

Deno.test("pool: `env create --queue` waits for the whole topology's slots, then the pool DEPLOYs it; destroyed, it leaves", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 2 });
  const dir = mesh.home.dir;
  const filler = logged(dir, "filler", 2, 600);
  const readout = logged(dir, "readout", 2, 600);
  await queue(mesh, filler);
  await waitFor(() => (times(dir).get("filler")?.starts.length ?? 0) === 2, { timeout: 15_000 });
  const q = await mesh.run([
    "env",
    "create",
    readout,
    "--id",
    "ro",
    "--queue",
    "--priority",
    "3",
    "--no-wait",
  ]);
  assertEquals(q.code, 0, q.stderr);
  const show = async () => {
    const r = await mesh.run(["env", "show", "ro", "--json"]);
    return r.code === 0 ? (JSON.parse(r.stdout) as { state: string }).state : undefined;
  };
  assertEquals(await show(), undefined, "no environment while it waits");
  assertEquals((await pool(mesh)).queue.map((x) => x.id), ["ro"]);
  const freedAt = Date.now();
  const stop = await mesh.run(["topology", "stop", "--id", "filler", "--grace", "1"]);
  assertEquals(stop.code, 0, stop.stderr);
  await waitFor(async () => (await show()) === "DEPLOYED", {
    timeout: 30_000,
    what: "the queued environment to deploy",
  });
  assert(
    Math.min(...times(dir).get("readout")!.starts) >= freedAt,
    "deployed only once the filler freed the slots",
  );
  // DEPLOYED once both tasks were spawned; their scripts log a moment later.
  await waitFor(() => times(dir).get("readout")?.starts.length === 2, {
    timeout: 10_000,
    what: "both readout tasks to log their start",
  });
  assertEquals((await pool(mesh)).running.map((r) => r.id), ["ro"], "still the pool's while it lives");
  const destroy = await mesh.run(["env", "destroy", "ro"]);
  assertEquals(destroy.code, 0, destroy.stderr);
  await waitFor(async () => (await pool(mesh)).finished.some((f) => f.id === "ro" && f.state === "done"), {
    timeout: 15_000,
    what: "the destroyed environment to leave the pool",
  });
});

/**
 * Chaos: partitions of a mesh running a topology, in network namespaces (`../_netns.ts`). Six agents with
 * one slot each run six writer tasks, one per agent (host); spare agents with free slots join after the
 * activation, so a side that wrongly re-placed lost tasks could. Each cut lasts 30 s, then heals.
 * - 3|3: neither half sees a majority of the six, so nothing is re-placed; each half says so.
 * - 4|2: the four re-place the two's tasks on their two spares; after the heal the two's originals are stopped
 *   as duplicates (`keep_replacement`) within 10 s; with `--reconcile keep_original`, the replacements are.
 * - 3|1|1|1: nobody sees a majority; nothing is re-placed anywhere.
 * After every heal: exactly one instance per task path, `shoal ps` and the record agree with the processes,
 * and every side's key-value replica holds every writer's last acknowledged value.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { allSee, lastStates, views } from "../_netns.ts";
import { skipWithoutNetns } from "../_netns.ts";
import { holdsUntil, waitFor } from "../_wait.ts";
import { type Cluster, startCluster } from "./_cluster.ts";

const ignore = skipWithoutNetns("chaos partition tests");
const CUT_MS = 30_000;
const opts = { ignore, sanitizeResources: false, sanitizeOps: false };

const once = (c: Cluster, n: number) => () => {
  const live = c.instances();
  return live.size === n && [...live.values()].every((p) => p.length === 1);
};

/** Heals `cut` sides and checks what must hold afterwards; returns ms from the heal to one instance each. */
async function healAndCheck(c: Cluster, cut: number[], tasks: number): Promise<number> {
  const healed = Date.now();
  for (const i of cut) c.net.heal(i);
  await waitFor(once(c, tasks), {
    timeout: 10_000,
    what: "exactly one instance per task path after the heal",
  });
  const ms = Date.now() - healed;
  await waitFor(() => allSee(c.agents, "alive"), {
    timeout: 20_000,
    detail: () => views(c.agents),
    what: "the view whole again",
  });
  // The mesh's account agrees with the processes: as many running as the topology has, the same PIDs.
  await waitFor(async () => {
    const r = await c.run(["ps", "--json"]);
    if (r.code !== 0) return false;
    const running = (JSON.parse(r.stdout) as { tasks: { state: string; pid?: number }[] }).tasks
      .filter((t) => t.state === "running");
    const pids = [...c.instances().values()].flat().sort();
    return running.length === tasks &&
      JSON.stringify(running.map((t) => t.pid).sort()) === JSON.stringify(pids);
  }, { timeout: 10_000, what: "shoal ps to list exactly the live instances" });
  const info = await c.run(["info", "--json"]);
  assertEquals(info.code, 0, info.stderr);
  const record = (JSON.parse(info.stdout) as { topologies: { placement?: Record<string, string[]> }[] })
    .topologies[0];
  if (record?.placement) {
    assertEquals(Object.values(record.placement).flat().length, tasks, "the record places each task once");
  }
  // Key-values: once writers stop, every side holds each writer's last acknowledged value.
  c.stopWriting();
  const sides = [...new Set(c.agents.map((a) => a.side))];
  await waitFor(async () => {
    const acked = c.lastAcked();
    for (const s of sides) {
      const kv = await c.kvOf(s);
      for (const [i, v] of acked) if (kv.get(i) !== v) return false;
    }
    return acked.size >= tasks;
  }, {
    timeout: 15_000,
    interval: 500,
    what: "every side's replica to hold every writer's last acked value",
  });
  return ms;
}

Deno.test({
  ...opts,
  name:
    "chaos: a 3|3 cut re-places nothing (no side has a majority), says so, and heals to one instance each",
  async fn() {
    await using c = await startCluster([3, 3], 6);
    await c.add(0, "a-spare", 2);
    await c.add(1, "b-spare", 2);
    await waitFor(() => allSee(c.agents, "alive"), {
      timeout: 20_000,
      detail: () => views(c.agents),
      what: "the spares in every view",
    });
    const cutAt = Date.now();
    c.net.cut(1);
    await waitFor(() => allSee(c.agents, "dead", true), {
      timeout: 60_000,
      detail: () => views(c.agents),
      what: "each half to see the other dead",
    });
    // Until the cut ends, no path ever runs twice and none stops.
    await holdsUntil(once(c, 6), () => Date.now() - cutAt > CUT_MS, {
      timeout: CUT_MS + 5_000,
      holds: "one instance per path during the cut",
      what: "the end of the cut",
    });
    const said = c.logLines(/this side sees 3 of 6 agents; not re-placing/);
    assert(said.length >= 2, `both halves say why they do not re-place: ${JSON.stringify(said)}`);
    const info = await c.run(["info"], 0);
    assert(/this side sees 3 of 6 agents; not re-placing/.test(info.stdout), info.stdout + info.stderr);
    assertEquals(c.logLines(/agent died; re-placing/).length, 0);
    const ms = await healAndCheck(c, [1], 6);
    console.log(`chaos 3|3: one instance per path ${ms} ms after the heal`);
    assertEquals(c.logLines(/duplicate task stopped/).length, 0);
  },
});

/** A 4|2 cut, then a heal that reconciles by `rule`: the two's originals, or their replacements, stop. */
async function fourTwo(rule: "keep_replacement" | "keep_original") {
  await using c = await startCluster(
    [4, 2],
    6,
    rule === "keep_replacement" ? {} : {
      activateArgs: ["--reconcile", rule],
    },
  );
  // One task per host: two spares, so both lost tasks have somewhere to go.
  const spares = [await c.add(0, "a-spare0", 1), await c.add(0, "a-spare1", 1)];
  await waitFor(() => allSee(c.agents, "alive"), {
    timeout: 20_000,
    detail: () => views(c.agents),
    what: "the spares in every view",
  });
  const cutAt = Date.now();
  c.net.cut(1);
  // The two's tasks run twice while cut: their originals, and the replacements on the spare.
  await waitFor(() => [...c.instances().values()].filter((p) => p.length === 2).length === 2, {
    timeout: 60_000,
    detail: () =>
      views(c.agents) + "\n" +
      c.logLines(/re-plac|claim|majority|answer a ping|lease|WARN|ERROR/).map((l) => `${l.agent}: ${l.line}`)
        .join("\n"),
    what: "the two's tasks to be re-placed on the four's side",
  });
  await waitFor(
    () => c.logLines(/this side sees [0-3] of 6 agents; not re-placing/).some((l) => l.agent.startsWith("b")),
    {
      // The two learn of the four's death by probes that time out, which a loaded machine stretches.
      timeout: 60_000,
      detail: () => views(c.agents),
      what: "the two to say they do not re-place",
    },
  );
  // Each lost agent re-placed once, by one agent (in one record, or two when the deaths came apart).
  const replaced = await waitFor(() => {
    const l = c.logLines(/tasks re-placed topology=Chaos placed=\d+ lost=0/);
    const placed = l.reduce((n, x) => n + Number(/placed=(\d+)/.exec(x.line)![1]), 0);
    return placed === 2 ? l : undefined;
  }, { timeout: 10_000, what: "the recoveries to be recorded" });
  const lost = c.logLines(/agent died; re-placing its tasks/);
  assertEquals(lost.length, 2, JSON.stringify(lost));
  assertEquals(new Set([...lost, ...replaced].map((l) => l.agent)).size, 1, "one agent acted");
  assertEquals(new Set(lost.map((l) => /agent=(\S+)/.exec(l.line)![1])).size, 2, "each lost agent once");
  await holdsUntil(
    () => [...c.instances().values()].flat().length === 8,
    () => Date.now() - cutAt > CUT_MS,
    {
      timeout: CUT_MS + 5_000,
      holds: "no further re-placing during the cut",
      what: "the end of the cut",
    },
  );
  const ms = await healAndCheck(c, [1], 6);
  console.log(`chaos 4|2 (${rule}): one instance per path ${ms} ms after the heal`);
  const dups = c.logLines(/duplicate task stopped/);
  assertEquals(dups.length, 2, JSON.stringify(dups));
  const twos = c.agents.filter((a) => a.side === 1);
  assert(
    rule === "keep_replacement"
      ? dups.every((d) => d.agent.startsWith("b") && spares.some((s) => d.line.includes(`keptOn=${s.id}`)))
      : dups.every((d) =>
        spares.some((s) => s.name === d.agent) && twos.some((b) => d.line.includes(`keptOn=${b.id}`))
      ),
    JSON.stringify(dups),
  );
  assert(dups.every((d) => d.line.includes(`rule=${rule}`)), JSON.stringify(dups));
}

Deno.test({
  ...opts,
  name:
    "chaos: in a 4|2 cut the four re-place the two's tasks once; after the heal the originals stop as duplicates",
  fn: () => fourTwo("keep_replacement"),
});

Deno.test({
  ...opts,
  name: "chaos: the same cut with --reconcile keep_original: after the heal the replacements stop instead",
  fn: () => fourTwo("keep_original"),
});

Deno.test({
  ...opts,
  name: "chaos: a 3|1|1|1 cut re-places nothing anywhere and heals to one instance each",
  async fn() {
    await using c = await startCluster([3, 1, 1, 1], 6);
    await c.add(0, "a-spare", 2);
    await waitFor(() => allSee(c.agents, "alive"), {
      timeout: 20_000,
      detail: () => views(c.agents),
      what: "the spare in every view",
    });
    const cutAt = Date.now();
    for (const i of [1, 2, 3]) c.net.cut(i);
    // The three see the isolated ones dead; an isolated agent alone doubts itself first (Lifeguard slows its
    // probing), so its verdicts may come late, and nothing here needs them.
    const three = c.agents.filter((a) => a.side === 0);
    await waitFor(() =>
      allSee(three.concat(c.agents.filter((a) => a.side !== 0)), "dead", true) ||
      three.every((a) => c.agents.every((b) => b.side === 0 || lastStates(a.dataDir).get(b.id) === "dead")), {
      timeout: 60_000,
      detail: () => views(c.agents),
      what: "the three to see the isolated agents dead",
    });
    await holdsUntil(once(c, 6), () => Date.now() - cutAt > CUT_MS, {
      timeout: CUT_MS + 60_000,
      holds: "one instance per path during the cut",
      what: "the end of the cut",
    });
    assertEquals(c.logLines(/agent died; re-placing/).length, 0);
    const said = c.logLines(/this side sees [0-3] of 6 agents; not re-placing/);
    assert(said.some((l) => l.agent.startsWith("a")), JSON.stringify(said));
    const ms = await healAndCheck(c, [1, 2, 3], 6);
    console.log(`chaos 3|1|1|1: one instance per path ${ms} ms after the heal`);
  },
});

/**
 * Prometheus metrics on a real local mesh, scraped by a real Prometheus server: `shoal up --metrics
 * 127.0.0.1:0` gives each agent its own port, `shoal info --prometheus-sd` writes the file_sd targets, and
 * Prometheus' HTTP API returns the agents' series.
 */
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { startMesh, writeTopology } from "./_harness.ts";
import { prometheusMissing, startPrometheus } from "./_prometheus.ts";
import { waitFor } from "./_wait.ts";

const missing = prometheusMissing();
const ignore = !!missing && !process.env.CI;
if (missing) console.warn(`metrics tests: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

interface InfoJson {
  agents: { id: string; host: string; state: string; metrics?: string }[];
}

Deno.test({
  name: "metrics: Prometheus scrapes two agents found through shoal info --prometheus-sd",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 2, slots: 2, upArgs: ["--metrics", "127.0.0.1:0"] });
    const info = JSON.parse((await mesh.run(["info", "--json"])).stdout) as InfoJson;
    const endpoints = info.agents.map((a) => a.metrics);
    assertEquals(endpoints.length, 2);
    assert(endpoints.every((e) => e && /^127\.0\.0\.1:\d+$/.test(e)), `endpoints: ${endpoints}`);
    assert(endpoints[0] !== endpoints[1], "each agent has its own port");

    const file = writeTopology(
      mesh.home.dir,
      "m.xml",
      `<topology name="Metrics">
  <decltask name="Sleeper"><exe reachable="true">sleep 600</exe></decltask>
  <decltask name="Crasher"><exe reachable="true">sh -c 'sleep 0.3; exit 3'</exe></decltask>
  <main name="main"><task>Crasher</task><group name="g" n="3"><task>Sleeper</task></group></main>
</topology>`,
    );
    const act = await mesh.run(["topology", "activate", file]);
    assertEquals(act.code, 0, act.stderr);

    await using prom = await startPrometheus();
    const sd = await mesh.run(["info", "--prometheus-sd", prom.targetsFile]);
    assertEquals(sd.code, 0, sd.stderr);
    const targets = JSON.parse(await Deno.readTextFile(prom.targetsFile)) as {
      targets: string[];
      labels: Record<string, string>;
    }[];
    assertEquals(targets.map((t) => t.targets[0]).sort(), [...endpoints].sort());
    assertEquals(targets.map((t) => t.labels.shoal_agent).sort(), info.agents.map((a) => a.id).sort());

    // Both targets up, and the crash scraped after it happened.
    await waitFor(async () => (await prom.query('up{job="shoal"} == 1')).length === 2, {
      timeout: 30_000,
      what: "both agents scraped",
    });
    const sum = async (q: string) => (await prom.query(q)).reduce((n, r) => n + Number(r.value[1]), 0);
    await waitFor(async () => await sum('shoal_task_exits_total{code="3",stopped="false"}') === 1, {
      timeout: 20_000,
      what: "the crash in shoal_task_exits_total",
    });
    assertEquals(await sum('shoal_tasks{state="running"}'), 3);
    assertEquals(await sum("shoal_task_starts_total"), 4);
    assertEquals(await sum('shoal_slots{kind="total"}'), 4);
    assertEquals(await sum("shoal_task_spawn_seconds_count"), 4);
    assert(await sum("shoal_leases_granted_total") >= 1);
    const alive = await prom.query('shoal_members{state="alive"}');
    assertEquals(alive.map((r) => r.value[1]), ["2", "2"]);
    assertEquals(alive.map((r) => r.metric.shoal_host).filter(Boolean).length, 2);
    assert(await sum('shoal_gossip_messages_total{topic="/shoal/events/1",direction="in"}') >= 1);
    assert(await sum("shoal_connections") >= 2);
    assert(await sum("shoal_resident_memory_bytes") > 10_000_000);
    assertEquals((await prom.query("shoal_event_loop_lag_seconds")).length, 2);
    assertStringIncludes(
      (await prom.query("shoal_membership_messages_total")).map((r) => r.metric.direction).sort().join(),
      "in,in,out,out",
    );
  },
});

Deno.test("metrics: a bad --metrics address is a usage error; a taken port fails the agent clearly", async () => {
  await using mesh = await startMesh({ agents: 1, upArgs: ["--metrics", "127.0.0.1:0"] });
  const bad = await mesh.run(["submit", "-n", "1", "--metrics", "localhost"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, 'Invalid metrics address "localhost"');
  const info = JSON.parse((await mesh.run(["info", "--json"])).stdout) as InfoJson;
  const taken = info.agents[0]!.metrics!;
  const r = await mesh.run(["agent", "--metrics", taken, "--listen", "/ip4/127.0.0.1/tcp/0", "--quiet"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, `Cannot serve metrics on "${taken}": the port is in use`);
});

import { EventHub } from "../mesh/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../tests/_assert.ts";
import { createAgentMetrics } from "./agent_metrics.ts";
import { parseHostPort } from "./listen_address.ts";
import type { RunnerEventLike } from "./types.ts";

function sources() {
  const runner = new EventHub<RunnerEventLike>();
  const kv = new EventHub<{ sender: string; version: string }>();
  const target = new EventTarget();
  const published = new EventHub<{ topic: string; bytes: number }>();
  const tasks = [{ state: "running" }, { state: "running" }, { state: "exited" }];
  return {
    runner,
    kv,
    target,
    published,
    src: {
      tasks: () => tasks,
      runnerEvents: runner,
      leases: () => ({ granted: 3, refused: { full: 1, "stale-epoch": 0 } }),
      slots: () => ({ total: 4, free: 2 }),
      kvChanges: kv,
      commandsToTasks: new EventHub<unknown>(),
      commandsToAgent: new EventHub<unknown>(),
      pubsub: target as unknown as Parameters<typeof createAgentMetrics>[0]["pubsub"],
      published,
      connections: () => 5,
      connectionCounts: () => ({ opened: 7, closed: 2, dialled: 4 }),
      members: () => [{ state: "alive" }, { state: "suspect" }],
      swim: () => ({ sent: 10, received: 12 }),
    },
  };
}

Deno.test("metrics: scrape-time gauges read the agent's parts, counters follow its events", async () => {
  const { runner, kv, target, published, src } = sources();
  const m = createAgentMetrics(src);
  published.emit({ topic: "/t", bytes: 4 });
  runner.emit({ type: "task:started", id: "1", restarts: 0, at: Date.now() - 20 });
  runner.emit({
    type: "task:exited",
    id: "1",
    code: 3,
    signal: null,
    willRestart: true,
    stopped: false,
    at: Date.now(),
  });
  runner.emit({ type: "task:started", id: "1", restarts: 1, at: Date.now() });
  kv.emit({ sender: "1", version: "000000000000001.000000" });
  kv.emit({ sender: "99", version: `${String(Date.now() - 50).padStart(15, "0")}.000000` });
  target.dispatchEvent(new CustomEvent("message", { detail: { topic: "/t", data: new Uint8Array(10) } }));
  const text = await m.text();
  for (
    const line of [
      'shoal_tasks{state="running"} 2',
      'shoal_tasks{state="exited"} 1',
      'shoal_tasks{state="failed"} 0',
      "shoal_task_starts_total 2",
      'shoal_task_exits_total{code="3",stopped="false"} 1',
      "shoal_task_restarts_total 1",
      "shoal_task_spawn_seconds_count 2",
      "shoal_leases_granted_total 3",
      'shoal_leases_refused_total{reason="full"} 1',
      'shoal_kv_writes_total{origin="local"} 1',
      'shoal_kv_writes_total{origin="remote"} 1',
      "shoal_kv_propagation_seconds_count 1",
      'shoal_gossip_messages_total{topic="/t",direction="in"} 1',
      'shoal_gossip_bytes_total{topic="/t",direction="in"} 10',
      'shoal_gossip_messages_total{topic="/t",direction="out"} 1',
      'shoal_gossip_bytes_total{topic="/t",direction="out"} 4',
      "shoal_connections 5",
      'shoal_connection_events_total{event="opened"} 7',
      'shoal_members{state="suspect"} 1',
      'shoal_membership_messages_total{direction="out"} 10',
      'shoal_slots{kind="free"} 2',
    ]
  ) assertStringIncludes(text, `${line}\n`);
  assert(/shoal_kv_propagation_seconds_bucket\{le="0\.1"\} 1\n/.test(text), text);
  // A second scrape does not double what is read from cumulative sources.
  assertStringIncludes(await m.text(), "shoal_leases_granted_total 3\n");
  m.close();
  runner.emit({ type: "task:started", id: "2", restarts: 0, at: Date.now() });
  assertStringIncludes(await m.text(), "shoal_task_starts_total 2\n");
});

Deno.test("metrics: listen addresses are HOST:PORT, IPv6 in brackets, a bare :PORT on loopback", () => {
  assertEquals(parseHostPort("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
  assertEquals(parseHostPort("[::1]:9464"), { host: "::1", port: 9464 });
  assertEquals(parseHostPort(":9464"), { host: "127.0.0.1", port: 9464 });
  for (const bad of ["localhost", "1.2.3.4:70000", "a b:1", ""]) {
    let err: unknown;
    try {
      parseHostPort(bad, "metrics address");
    } catch (e) {
      err = e;
    }
    assert(err instanceof RangeError, bad);
    assertStringIncludes((err as Error).message, `Invalid metrics address "${bad}"`);
  }
});

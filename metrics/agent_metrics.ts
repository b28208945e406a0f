/**
 * An agent's Prometheus metrics (prom-client). Counters follow events as they happen (a few increments
 * per task start or gossip message); everything else — tasks by state, members by state, connections,
 * memory, event-loop lag — is read when a scrape asks, so an agent nobody scrapes does no periodic work.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { parseVersion } from "../agent/kv/mod.ts";
import type { MetricsSources } from "./types.ts";

/** Seconds from opening a task's log files to its process being spawned. */
const SPAWN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Seconds from a remote write (its HLC wall time) to its arrival in this replica. */
const PROPAGATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TASK_STATES = ["starting", "running", "restarting", "exited", "failed", "stopped"];
const MEMBER_STATES = ["alive", "suspect", "dead", "left"];

/** An agent's metrics; {@linkcode AgentMetrics.text} renders them, {@linkcode AgentMetrics.close} unhooks them. */
export interface AgentMetrics {
  readonly registry: Registry;
  /** The exposition text (Prometheus 0.0.4 format). */
  text(): Promise<string>;
  /** The content type to serve {@linkcode AgentMetrics.text} with. */
  readonly contentType: string;
  /** Stops following the agent's events. Idempotent. */
  close(): void;
}

/**
 * Creates an agent's metrics from its parts.
 *
 * @example
 * ```ts
 * const metrics = createAgentMetrics(sources);
 * await using server = await startMetricsServer({ listen: "127.0.0.1:0", metrics });
 * console.log(server.address); // 127.0.0.1:43121
 * ```
 */
export function createAgentMetrics(src: MetricsSources): AgentMetrics {
  const registry = new Registry();
  const reg = [registry];
  const offs: (() => void)[] = [];

  new Gauge({
    name: "shoal_tasks",
    help: "Tasks of this agent by state",
    labelNames: ["state"],
    registers: reg,
    collect() {
      const counts = new Map(TASK_STATES.map((s) => [s, 0]));
      for (const t of src.tasks()) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: "shoal_slots",
    help: "Task slots of this agent, total and free",
    labelNames: ["kind"],
    registers: reg,
    collect() {
      const s = src.slots();
      this.set({ kind: "total" }, s.total);
      this.set({ kind: "free" }, s.free);
    },
  });
  const starts = new Counter({
    name: "shoal_task_starts_total",
    help: "Task processes spawned (restarts included)",
    registers: reg,
  });
  const exits = new Counter({
    name: "shoal_task_exits_total",
    help: "Task processes that exited, by exit code (or signal name) and whether they were asked to stop",
    labelNames: ["code", "stopped"],
    registers: reg,
  });
  const restarts = new Counter({
    name: "shoal_task_restarts_total",
    help: "Crashed tasks restarted by their trigger",
    registers: reg,
  });
  const failures = new Counter({
    name: "shoal_task_start_failures_total",
    help: "Tasks that could not be started",
    registers: reg,
  });
  const spawn = new Histogram({
    name: "shoal_task_spawn_seconds",
    help: "From preparing a task's run (log files) to its process spawned",
    buckets: SPAWN_BUCKETS,
    registers: reg,
  });
  const localTasks = new Set<string>();
  offs.push(src.runnerEvents.on((e) => {
    if (e.type === "task:started") {
      starts.inc();
      localTasks.add(e.id);
      spawn.observe(Math.max(0, Date.now() - e.at) / 1000);
    } else if (e.type === "task:exited") {
      exits.inc({ code: e.signal ?? String(e.code), stopped: String(e.stopped) });
      if (e.willRestart) restarts.inc();
      else localTasks.delete(e.id);
    } else failures.inc();
  }));

  new Counter({
    name: "shoal_leases_granted_total",
    help: "Slot leases this agent granted",
    registers: reg,
    collect() {
      this.reset();
      this.inc(src.leases().granted);
    },
  });
  new Counter({
    name: "shoal_leases_refused_total",
    help: "Slot leases this agent refused, by reason",
    labelNames: ["reason"],
    registers: reg,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(src.leases().refused)) this.inc({ reason }, n);
    },
  });

  const kvWrites = new Counter({
    name: "shoal_kv_writes_total",
    help: "Key-value entries stored in this replica: written by a local task, or arrived from another agent",
    labelNames: ["origin"],
    registers: reg,
  });
  const kvDelay = new Histogram({
    name: "shoal_kv_propagation_seconds",
    help: "From a remote task's write (its version's wall clock) to the entry stored here",
    buckets: PROPAGATION_BUCKETS,
    registers: reg,
  });
  offs.push(src.kvChanges.on((e) => {
    if (localTasks.has(e.sender)) {
      kvWrites.inc({ origin: "local" });
      return;
    }
    kvWrites.inc({ origin: "remote" });
    try {
      kvDelay.observe(Math.max(0, Date.now() - parseVersion(e.version).wall) / 1000);
    } catch { /* not a version: nothing to measure */ }
  }));

  const commands = new Counter({
    name: "shoal_commands_total",
    help: "Custom commands delivered here, to a local task or to the agent itself",
    labelNames: ["to"],
    registers: reg,
  });
  offs.push(src.commandsToTasks.on(() => commands.inc({ to: "task" })));
  offs.push(src.commandsToAgent.on(() => commands.inc({ to: "agent" })));

  const gossipMessages = new Counter({
    name: "shoal_gossip_messages_total",
    help: "Gossip messages received (in) and published by this agent (out), by topic",
    labelNames: ["topic", "direction"],
    registers: reg,
  });
  const gossipBytes = new Counter({
    name: "shoal_gossip_bytes_total",
    help: "Payload bytes of gossip messages received (in) and published by this agent (out), by topic",
    labelNames: ["topic", "direction"],
    registers: reg,
  });
  const onMessage = (evt: CustomEvent<{ topic: string; data: Uint8Array }>) => {
    const labels = { topic: evt.detail.topic, direction: "in" };
    gossipMessages.inc(labels);
    gossipBytes.inc(labels, evt.detail.data.byteLength);
  };
  src.pubsub.addEventListener("message", onMessage);
  offs.push(src.published.on(({ topic, bytes }) => {
    gossipMessages.inc({ topic, direction: "out" });
    gossipBytes.inc({ topic, direction: "out" }, bytes);
  }));
  offs.push(() => src.pubsub.removeEventListener("message", onMessage));

  new Gauge({
    name: "shoal_connections",
    help: "Open libp2p connections (links to agents and light peers)",
    registers: reg,
    collect() {
      this.set(src.connections());
    },
  });
  new Counter({
    name: "shoal_connection_events_total",
    help: "Connections opened, closed, and dialled by this agent",
    labelNames: ["event"],
    registers: reg,
    collect() {
      this.reset();
      for (const [event, n] of Object.entries(src.connectionCounts())) this.inc({ event }, n);
    },
  });
  new Gauge({
    name: "shoal_members",
    help: "Members of this agent's membership view, by state",
    labelNames: ["state"],
    registers: reg,
    collect() {
      const counts = new Map(MEMBER_STATES.map((s) => [s, 0]));
      for (const m of src.members()) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Counter({
    name: "shoal_membership_messages_total",
    help: "Membership protocol messages (probes, acks, gossip, push-pull) sent and received",
    labelNames: ["direction"],
    registers: reg,
    collect() {
      this.reset();
      const s = src.swim();
      if (!s) return;
      this.inc({ direction: "out" }, s.sent);
      this.inc({ direction: "in" }, s.received);
    },
  });
  new Gauge({
    name: "shoal_event_loop_lag_seconds",
    help: "How late a callback queued at scrape time ran (the agent's event loop was busy that long)",
    registers: reg,
    async collect() {
      const t = performance.now();
      await new Promise((r) => setImmediate(r));
      this.set((performance.now() - t) / 1000);
    },
  });
  new Gauge({
    name: "shoal_resident_memory_bytes",
    help: "Resident set size of the agent process",
    registers: reg,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: "shoal_heap_used_bytes",
    help: "JavaScript heap in use by the agent process (live objects and garbage not yet collected)",
    registers: reg,
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Gauge({
    name: "shoal_external_memory_bytes",
    help: "Memory outside the JavaScript heap held by its objects (array buffers, native handles)",
    registers: reg,
    collect() {
      this.set(process.memoryUsage().external);
    },
  });
  new Counter({
    name: "shoal_cpu_seconds_total",
    help: "CPU time of the agent process (user and system)",
    labelNames: ["mode"],
    registers: reg,
    collect() {
      this.reset();
      const u = process.cpuUsage();
      this.inc({ mode: "user" }, u.user / 1e6);
      this.inc({ mode: "system" }, u.system / 1e6);
    },
  });

  let closed = false;
  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    close() {
      if (closed) return;
      closed = true;
      for (const off of offs) off();
    },
  };
}

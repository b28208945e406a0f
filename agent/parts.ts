/**
 * The agent's own long-lived parts (`mesh/startable.ts`): what it announces about itself, the state file,
 * its start and stop events, the load, health and idle watches, and the catch-up after joining. Each factory
 * takes the narrow collaborators it needs and does nothing until `start()`.
 *
 * @module
 */
import { loadavg } from "node:os";
import {
  type Bootstrap,
  EVENTS_TOPIC,
  type Membership,
  type MeshNode,
  type SelfInfo,
  SHOAL_VERSION,
  type Startable,
  startable,
} from "../mesh/mod.ts";
import { METRICS_LABEL } from "../metrics/mod.ts";
import {
  HEALTH_LABEL,
  healthFromLabels,
  HealthMonitor,
  type HealthOptions,
  systemProbe,
} from "../pool/health.ts";
import { IdleWatch } from "../pool/idle.ts";
import type { SlotTable } from "./leases/mod.ts";
import type { Logger } from "./log.ts";
import { writeStateFile } from "./state_file.ts";
import type { EventMessage } from "./wire/mod.ts";

/** The 1-minute load average, to two decimals. */
export function currentLoad(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

/** What the agent announces about itself; the load, health and metrics parts update it. */
export interface SelfAnnouncement {
  /** The membership's `self`. */
  info(): SelfInfo;
  load: number;
  metricsAddress: string | undefined;
}

/** Builds the agent's announcement (the membership reads it on each announce). */
export function createSelfAnnouncement(
  init: {
    host: string;
    slots: Pick<SlotTable, "total" | "offered" | "refusing">;
    gpus?: number;
    group?: string;
    labels?: Record<string, string>;
  },
): SelfAnnouncement {
  const { host, slots } = init;
  const self: SelfAnnouncement = {
    load: currentLoad(),
    metricsAddress: undefined,
    info: () => ({
      host,
      slots: { total: slots.total, free: slots.offered },
      version: SHOAL_VERSION,
      load: self.load,
      ...(init.gpus ? { gpus: init.gpus } : {}),
      ...(init.labels || self.metricsAddress || slots.refusing
        ? {
          labels: {
            ...init.labels,
            ...(self.metricsAddress ? { [METRICS_LABEL]: self.metricsAddress } : {}),
            ...(slots.refusing ? { [HEALTH_LABEL]: slots.refusing } : {}),
          },
        }
        : {}),
      ...(init.group ? { group: init.group } : {}),
    }),
  };
  return self;
}

/** `agent.json`: "running" once every part started and again on joining, "stopped" last of all. */
export interface StateFilePart extends Startable, AsyncDisposable {
  write(status: "running" | "stopped"): Promise<void>;
}

/** The state file part (listed first, so that it writes "stopped" after everything else stopped). */
export function createStateFilePart(
  init: {
    dataDir: string;
    node: Pick<MeshNode, "peerId" | "addresses">;
    bootstrap: Pick<Bootstrap, "isJoined" | "joined">;
    startedAt: number;
    log: Logger;
  },
): StateFilePart {
  let stopping = false;
  const write = (status: "running" | "stopped") =>
    writeStateFile(init.dataDir, {
      peerId: init.node.peerId,
      pid: process.pid,
      addrs: init.node.addresses(),
      startedAt: init.startedAt,
      joined: init.bootstrap.isJoined,
      status,
      version: SHOAL_VERSION,
    });
  return startable({
    name: "state file",
    write,
    start() {
      void init.bootstrap.joined.then(() => {
        if (stopping) return;
        return write("running").catch((err) =>
          init.log.warn("could not write the state file; `shoal info` may show this agent as starting", {
            reason: (err as Error).message,
          })
        );
      });
    },
    afterStart: () => write("running"),
    async stop() {
      stopping = true;
      await write("stopped").catch((err) =>
        init.log.warn("could not write the state file; `shoal info` may show this stopped agent as running", {
          reason: (err as Error).message,
        })
      );
    },
  });
}

/**
 * The agent's start, logged. Peers and monitors learn of an agent's start and end from the membership
 * (`agent:joined`, `agent:left`, which `shoal monitor` prints): an `agent:started` event on the events topic
 * as well was flooded to every agent, and while 100 agents formed a mesh each received and forwarded one
 * per agent, a tenth of the gossip it handled then.
 */
export function createPresencePart(
  init: {
    node: Pick<MeshNode, "peerId" | "addresses">;
    host: string;
    slots: number;
    log: Logger;
  },
): Startable {
  const { node, host, log } = init;
  return startable({
    name: "presence",
    start() {},
    afterStart() {
      log.info("agent listening", {
        id: node.peerId,
        addrs: node.addresses().join(","),
        slots: init.slots,
        host,
      });
    },
    stop() {},
  });
}

/**
 * Announces the load when it changed noticeably (checked every 10 s), not every second, and lazily: it is for
 * people to read, and every agent of a host sees it change at the same moment.
 */
export function createLoadPart(
  init: { self: SelfAnnouncement; membership: Pick<Membership, "announce">; intervalMs?: number },
): Startable {
  let timer: ReturnType<typeof setInterval> | undefined;
  return startable({
    name: "load",
    start() {
      timer ??= setInterval(() => {
        const now = currentLoad();
        if (Math.abs(now - init.self.load) < Math.max(0.5, init.self.load * 0.25)) return;
        init.self.load = now;
        init.membership.announce({ lazy: true });
      }, init.intervalMs ?? 10_000);
      timer.unref?.();
    },
    stop() {
      clearInterval(timer);
    },
  });
}

/** Stops taking leases while the disk is full or the load too high (`pool/health.ts`). */
export function createHealthPart(
  init: {
    dataDir: string;
    labels?: Record<string, string>;
    health?: HealthOptions;
    slots: Pick<SlotTable, "refusing">;
    membership: Pick<Membership, "announce">;
    node: Pick<MeshNode, "peerId" | "publish">;
    host: string;
    log: Logger;
  },
): Startable {
  const { slots, membership, node, host, log } = init;
  let monitor: HealthMonitor | undefined;
  return startable({
    name: "health",
    start() {
      // Its own options win over what the plug-in that started it passed in labels.
      const fromLabels = healthFromLabels(init.labels);
      if (fromLabels.bad.length) {
        log.warn("ignoring health labels that are not numbers", { labels: fromLabels.bad });
      }
      monitor ??= new HealthMonitor(systemProbe(init.dataDir), {
        ...fromLabels.options,
        ...init.health,
        onUnreadable: (why) =>
          log.warn("cannot read the data disk's free space; --min-free-disk not checked", { why }),
        onChange: (reason) => {
          slots.refusing = reason;
          if (reason) log.warn("taking no leases", { reason });
          else log.info("taking leases again");
          membership.announce();
          // The event is for monitors; the membership update above is what placement uses.
          const at = Date.now();
          const event: EventMessage = reason
            ? { type: "agent:unhealthy", at, by: node.peerId, host, reason }
            : { type: "agent:healthy", at, by: node.peerId, host };
          // Lost only for monitors: the state is in the membership update, and logged above.
          void node.publish(EVENTS_TOPIC, event).catch(() => {});
        },
      });
    },
    stop() {
      monitor?.[Symbol.dispose]();
    },
  });
}

/** Resolves {@linkcode IdlePart.idle} once no lease was held for `timeoutMs` (never without one). */
export interface IdlePart extends Startable, AsyncDisposable {
  readonly idle: Promise<void>;
  /** Slots changed: the agent is not idle now. */
  touch(): void;
}

/** The idle watch (`pool/idle.ts`); `busy` says whether leases are held or a topology waits. */
export function createIdlePart(
  init: { timeoutMs: number | undefined; busy: () => boolean; log: Logger },
): IdlePart {
  let watch: IdleWatch | undefined;
  const { promise, resolve } = Promise.withResolvers<void>();
  return startable({
    name: "idle watch",
    idle: promise,
    touch: () => watch?.touch(),
    start() {
      const timeoutMs = init.timeoutMs;
      if (!timeoutMs || watch) return;
      watch = new IdleWatch({
        timeoutMs,
        busy: init.busy,
        onIdle: (ms) => {
          init.log.info("idle past the idle timeout; leaving the mesh", { idleMs: ms, timeoutMs });
          resolve();
        },
      });
    },
    stop() {
      watch?.[Symbol.dispose]();
    },
  });
}

/** A replica that pulls from a peer: topology records, key-values, environments, the pool's queue. */
export interface JoinSource {
  /** Logged when it pulled something, with the count as `field`. */
  message: string;
  field: "records" | "entries";
  syncFrom(peer: string, options: { signal: AbortSignal }): Promise<number>;
}

/** Once the agent reached the mesh, each source pulls from the first connected peer that serves it. */
export function createJoinSyncPart(
  init: {
    node: Pick<MeshNode, "connectedPeers">;
    bootstrap: Pick<Bootstrap, "joined">;
    sources: readonly JoinSource[];
    log: Logger;
  },
): Startable {
  const abort = new AbortController();
  const syncOne = async (source: JoinSource) => {
    for (const peer of init.node.connectedPeers()) {
      if (abort.signal.aborted) return;
      try {
        const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(10_000)]);
        const n = await source.syncFrom(peer, { signal });
        if (n > 0) init.log.info(source.message, { from: peer, [source.field]: n });
        return;
      } catch { /* try the next peer */ }
    }
  };
  return startable({
    name: "join sync",
    start() {
      void init.bootstrap.joined.then(() => {
        if (!abort.signal.aborted) { for (const s of init.sources) void syncOne(s); }
      });
    },
    stop() {
      abort.abort();
    },
  });
}

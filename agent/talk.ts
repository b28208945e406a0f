/**
 * How tasks talk, wired on an agent: its key-value replica and replication, custom commands, and the
 * task API that tasks reach over their Unix socket; task-done events of local and remote tasks reach the
 * tasks that listen for them.
 *
 * @module
 */
import { EVENTS_TOPIC, type Membership, type MeshNode } from "../mesh/mod.ts";
import { EventMessageSchema } from "./wire/mod.ts";
import { expandRecord } from "../commander/mod.ts";
import { CustomCommands, type TaskPlaces } from "./commands/mod.ts";
import type { DesiredState } from "./desired/mod.ts";
import { formatVersion } from "./kv/mod.ts";
import { KvReplication } from "./kv/mod.ts";
import { KvStore } from "./kv/mod.ts";
import type { TopologyRecord } from "./wire/mod.ts";
import type { TaskRunner } from "./runner/mod.ts";
import { startTaskApi, type TaskApi } from "./task_api/mod.ts";

/** What {@linkcode startTalk} needs. */
export interface TalkInit {
  node: MeshNode;
  membership: Membership;
  desired: DesiredState;
  runner: TaskRunner;
  /** The host name the agent announces, for commands to `agent:<host>`. */
  host: string;
}

/** The running parts; `stop()` closes them in order (idempotent). */
export interface Talk {
  kv: KvStore;
  replication: KvReplication;
  commands: CustomCommands;
  taskApi: TaskApi;
  stop(): Promise<void>;
}

/** Where a record places its tasks; task IDs are worked out (by expanding it) only when first asked. */
function placesOf(record: TopologyRecord): TaskPlaces {
  const agentsOf = new Map<string, string[]>();
  for (const [agent, paths] of Object.entries(record.placement)) {
    for (const p of paths) {
      const list = agentsOf.get(p);
      if (list) list.push(agent);
      else agentsOf.set(p, [agent]);
    }
  }
  let ids: Map<string, string> | null | undefined;
  return {
    agentsOf,
    pathOfId: (id) => {
      if (ids === undefined) {
        try {
          ids = new Map(expandRecord(record).tasks.map((t) => [t.id, t.path]));
        } catch {
          ids = null; // cannot be expanded here: commands to task IDs are gossiped
        }
      }
      return ids?.get(id);
    },
  };
}

/** Starts key-values, custom commands and the task API on an agent. */
export async function startTalk(init: TalkInit): Promise<Talk> {
  const { node, membership, desired, runner, host } = init;
  const kv = new KvStore();
  const replication = new KvReplication({ node, store: kv, membership });
  await replication.start();
  const ref: { api?: TaskApi } = {};
  // One per record version (records are replaced, never changed in place).
  const placesCache = new WeakMap<TopologyRecord, TaskPlaces>();
  const commands = new CustomCommands({
    node,
    host,
    localTasks: () => ref.api?.tasks() ?? [],
    places: (id) => {
      const record = desired.get(id);
      if (!record || record.state !== "active") return undefined;
      let places = placesCache.get(record);
      if (!places) placesCache.set(record, places = placesOf(record));
      return places;
    },
  });
  await commands.start();
  const taskApi = await startTaskApi({ store: kv, replication, commands });
  ref.api = taskApi;
  // A stopped topology's values go, so that its next activation starts from nothing (as in DDS).
  const dropStopped = (r: TopologyRecord) => {
    if (r.state === "stopped") kv.dropTopology(r.id, formatVersion({ wall: r.updatedAt, counter: 999_999 }));
  };
  desired.records().forEach(dropStopped);
  const offs = [desired.changes.on(dropStopped)];
  offs.push(runner.events.on((e) => {
    if (e.type !== "task:exited" || e.willRestart) return;
    const { topologyId, path, id, code, signal } = e;
    taskApi.taskDone({ type: "task:done", topologyId, path, id, code, signal });
  }));
  // Other agents' tasks: their exits arrive in the batched event gossip.
  offs.push(node.subscribe(EVENTS_TOPIC, EventMessageSchema, (events) => {
    for (const e of events) {
      if (e.type !== "task:exited" || e.willRestart) continue;
      const { topologyId, path, id, code, signal } = e;
      taskApi.taskDone({ type: "task:done", topologyId, path, id, code, signal });
    }
  }));
  let stopping: Promise<void> | undefined;
  return {
    kv,
    replication,
    commands,
    taskApi,
    stop() {
      return stopping ??= (async () => {
        for (const off of offs) off();
        // Stopping: a socket that fails to close is gone with the process.
        await taskApi.close().catch(() => {});
        await commands.stop();
        await replication.stop();
      })();
    },
  };
}

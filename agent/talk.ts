/**
 * How tasks talk, wired on an agent: its key-value replica and replication, custom commands, and the
 * task API that tasks reach over their Unix socket; task-done events of local and remote tasks reach the
 * tasks that listen for them.
 *
 * @module
 */
import { EVENTS_TOPIC, GossipEventSchema, type Membership, type MeshNode } from "../mesh/mod.ts";
import { CustomCommands } from "./custom_commands.ts";
import type { DesiredState } from "./desired_state.ts";
import { formatVersion } from "./hlc.ts";
import { KvReplication } from "./kv_replication.ts";
import { KvStore } from "./kv_store.ts";
import type { TopologyRecord } from "./protocols.ts";
import type { TaskRunner } from "./runner.ts";
import { startTaskApi, type TaskApi } from "./task_api.ts";

/** What {@linkcode startTalk} needs. */
export interface TalkInit {
  node: MeshNode;
  membership: Membership;
  desired: DesiredState;
  runner: TaskRunner;
  /** The host name the agent announces, for commands to `agent:<host>`. */
  host: string;
}

/** The running parts; `stop()` closes them in order. */
export interface Talk {
  kv: KvStore;
  replication: KvReplication;
  commands: CustomCommands;
  taskApi: TaskApi;
  stop(): Promise<void>;
}

/** Starts key-values, custom commands and the task API on an agent. */
export async function startTalk(init: TalkInit): Promise<Talk> {
  const { node, membership, desired, runner, host } = init;
  const kv = new KvStore();
  const replication = new KvReplication({ node, store: kv, membership });
  await replication.start();
  const ref: { api?: TaskApi } = {};
  const commands = new CustomCommands({
    node,
    host,
    localTasks: () => ref.api?.tasks() ?? [],
    topologyPaths: (id) => {
      const placement = desired.get(id)?.placement;
      return placement ? new Set(Object.values(placement).flat()) : undefined;
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
  desired.changes.on(dropStopped);
  runner.events.on((e) => {
    if (e.type !== "task:exited" || e.willRestart) return;
    const { topologyId, path, id, code, signal } = e;
    taskApi.taskDone({ type: "task:done", topologyId, path, id, code, signal });
  });
  // Other agents' tasks: their exits arrive in the batched event gossip.
  node.subscribe(EVENTS_TOPIC, GossipEventSchema, (msg) => {
    const list = msg.type === "batch" && Array.isArray(msg.events) ? msg.events : [];
    for (const e of list as Record<string, unknown>[]) {
      if (e.type !== "task:exited" || e.willRestart || typeof e.topologyId !== "string") continue;
      taskApi.taskDone({
        type: "task:done",
        topologyId: e.topologyId,
        path: String(e.path),
        id: String(e.id),
        code: typeof e.code === "number" ? e.code : null,
        signal: typeof e.signal === "string" ? e.signal : null,
      });
    }
  });
  return {
    kv,
    replication,
    commands,
    taskApi,
    async stop() {
      await taskApi.close().catch(() => {});
      await commands.stop();
      await replication.stop();
    },
  };
}

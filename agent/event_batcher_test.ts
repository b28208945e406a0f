import { assertEquals } from "../tests/_assert.ts";
import { EVENTS_TOPIC, TASK_EVENTS_TOPIC } from "../mesh/mod.ts";
import { EventBatcher } from "./event_batcher.ts";
import type { BatchedEvent } from "./wire/mod.ts";

const exited = (over: { willRestart?: boolean; stopped?: boolean; code?: number }) =>
  ({
    type: "task:exited",
    topologyId: "t",
    path: "main/a",
    id: "1",
    pid: 1,
    code: over.code ?? 0,
    signal: null,
    willRestart: over.willRestart ?? false,
    stopped: over.stopped ?? false,
    at: 1,
    agent: "me",
    host: "h",
  }) as BatchedEvent;

Deno.test("event batcher: what other agents act on goes to every agent, starts and whole stops to tools only", async () => {
  const sent: { topic: string; types: string[] }[] = [];
  const node = {
    peerId: "me",
    publish: (topic: string, m: unknown) => {
      const events = (m as { events: (BatchedEvent & { stopped?: boolean })[] }).events;
      sent.push({ topic, types: events.map((e) => `${e.type}${e.stopped ? " stopped" : ""}`) });
      return Promise.resolve();
    },
  };
  await using batcher = new EventBatcher(node, 10_000);
  batcher.add(
    {
      type: "task:started",
      topologyId: "t",
      path: "main/a",
      id: "1",
      pid: 1,
      restarts: 0,
      at: 1,
      agent: "me",
      host: "h",
    } as BatchedEvent,
  );
  batcher.add(exited({ code: 3 })); // a crash: environments, collectives, pools and waiting tasks act on it
  batcher.add(exited({ willRestart: true })); // restarted: nothing ended
  batcher.add(exited({ stopped: true })); // stopped alone (an update removed it): waiting tasks hear of it
  batcher.add(exited({ stopped: true }), { wholeStop: true }); // its whole topology stops: the record says so
  assertEquals(batcher.pending, 5);
  await batcher.flush();
  assertEquals(sent.sort((a, b) => a.topic < b.topic ? -1 : 1), [
    { topic: EVENTS_TOPIC, types: ["task:exited", "task:exited stopped"] },
    { topic: TASK_EVENTS_TOPIC, types: ["task:started", "task:exited", "task:exited stopped"] },
  ]);
});

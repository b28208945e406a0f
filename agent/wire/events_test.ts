import * as v from "valibot";
import { assertEquals } from "../../tests/_assert.ts";
import { taskStateEvents } from "../../env/task_events.ts";
import { type BatchedEvent, type EventMessage, EventMessageSchema } from "./events.ts";

const exited: BatchedEvent = {
  type: "task:exited",
  at: 2,
  topologyId: "t",
  path: "main/a_0",
  id: "7",
  pid: 42,
  code: 1,
  signal: null,
  willRestart: false,
  stopped: false,
  agent: "peer-a",
  host: "h",
};

Deno.test("events: a batch yields its events, each with the batch's by", () => {
  const msg: EventMessage = { type: "batch", at: 3, by: "peer-a", events: [exited] };
  assertEquals(v.parse(EventMessageSchema, msg), [{ by: "peer-a", ...exited }]);
});

Deno.test("events: an env:transition in a batch keeps its own by (who asked)", () => {
  const transition: BatchedEvent = {
    type: "env:transition",
    at: 1,
    envId: "e",
    event: "CONFIGURE",
    from: "DEPLOYED",
    to: "CONFIGURED",
    ok: true,
    by: "me@here (p)",
    startedAt: 1,
    ms: 5,
  };
  const out = v.parse(EventMessageSchema, { type: "batch", at: 3, by: "peer-a", events: [transition] });
  assertEquals(out.map((e) => e.by), ["me@here (p)"]);
});

Deno.test("events: an unknown or unreadable event is dropped alone, the rest of its batch arrives", () => {
  const events = [
    { type: "task:paused", at: 1, path: "main/a_0" },
    { ...exited, code: "one" },
    7,
    exited,
  ];
  const out = v.parse(EventMessageSchema, { type: "batch", at: 3, by: "peer-a", events });
  assertEquals(out.map((e) => e.type), ["task:exited"]);
  assertEquals(v.parse(EventMessageSchema, { type: "agent:resting", at: 1, by: "peer-b" }), []);
});

Deno.test("events: a single event is read as it is; a message without type, at and by fails", () => {
  const healthy: EventMessage = { type: "agent:healthy", at: 1, by: "peer-b", host: "h" };
  assertEquals(v.parse(EventMessageSchema, healthy), [healthy]);
  assertEquals(v.safeParse(EventMessageSchema, { type: 42 }).success, false);
  assertEquals(v.safeParse(EventMessageSchema, { type: "batch", at: 1 }).success, false);
});

Deno.test("events: an environment's task states, as env/ publishes them, are read back whole", () => {
  const task = { mode: "direct" as const, critical: true };
  const after = {
    "main/a_0": { ...task, state: "CONFIGURED" as const },
    "main/a_1": { ...task, state: "CONFIGURED" as const },
    "main/b_0": { ...task, state: "ERROR" as const, reason: "bad config" },
  };
  const events: BatchedEvent[] = taskStateEvents("readout", undefined, after, 5);
  const out = v.parse(EventMessageSchema, { type: "batch", at: 5, by: "peer-a", events });
  assertEquals(out, events.map((e) => ({ by: "peer-a", ...e })));
});

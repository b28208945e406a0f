import { assertEquals } from "../tests/_assert.ts";
import { allowedEvents, type EnvRecord } from "../env/mod.ts";
import type { MeshNode } from "../mesh/mod.ts";
import { EnvFeed, type EnvView, envView } from "./envs.ts";

function record(change: Partial<EnvRecord> = {}): EnvRecord {
  return {
    id: "readout",
    topologyId: "readout",
    file: "/tmp/readout.xml",
    state: "CONFIGURED",
    epoch: 3,
    seq: 1,
    runNumber: null,
    control: { rules: [], timeoutsMs: {} },
    tasks: {
      "main/b_0": { state: "CONFIGURED", mode: "direct", critical: true },
      "main/a_0": { state: "INVARIANT", mode: "none", critical: false },
    },
    controller: null,
    history: Array.from({ length: 30 }, (_, i) => ({
      event: "CONFIGURE" as const,
      from: "DEPLOYED" as const,
      to: "CONFIGURED" as const,
      ok: true,
      by: "me@here",
      startedAt: i,
      ms: 5,
    })),
    destroyed: false,
    createdAt: 1,
    updatedAt: 2,
    ...change,
  };
}

/** A feed whose fetches return `records` and count themselves. */
function feed(records: () => EnvRecord[]) {
  const emitted: EnvView[] = [];
  let fetches = 0;
  let fetched: () => void = () => {};
  const f = new EnvFeed({
    node: { subscribe: () => () => {} } as unknown as MeshNode,
    ask: <T>() => {
      fetches++;
      queueMicrotask(() => fetched());
      return Promise.resolve(records() as T);
    },
    via: () => "agent",
    sessionId: "s",
    emit: (v) => emitted.push(v),
    refreshDelayMs: 0,
  });
  return {
    f,
    emitted,
    fetches: () => fetches,
    nextFetch: () => new Promise<void>((r) => (fetched = r)),
  };
}

Deno.test("ui envs: a view carries env/'s allowed events and task aggregate, tasks by path, the last 20 transitions", () => {
  const v = envView(record());
  assertEquals(v.allowed, allowedEvents("CONFIGURED"));
  assertEquals(v.taskState, "CONFIGURED");
  assertEquals(v.tasks.map((t) => t.path), ["main/a_0", "main/b_0"]);
  assertEquals(v.history.length, 20);
  assertEquals(v.lastTransition?.startedAt, 29);
  assertEquals("control" in v, false);
});

Deno.test("ui envs: only newer records reach the pages", async () => {
  const { f, emitted } = feed(() => [record({ seq: 1 }), record({ id: "other" })]);
  await f.list();
  assertEquals(emitted.map((v) => [v.id, v.seq]), [["readout", 1], ["other", 1]]);
  await f.list();
  assertEquals(emitted.length, 2, "the same records again change nothing");
  const listed = await (feed(() => [record({ destroyed: true })]).f.list());
  assertEquals(listed, [], "destroyed environments are not listed");
});

Deno.test("ui envs: an event the held record already shows fetches nothing; unseen ones fetch once together", async () => {
  let current = record();
  const t = feed(() => [current]);
  await t.f.list();
  assertEquals(t.fetches(), 1);
  assertEquals(
    t.f.onEvent({
      type: "env:state",
      at: 1,
      by: "p",
      envId: "readout",
      state: "CONFIGURED",
      runNumber: null,
    }),
    false,
  );
  assertEquals(
    t.f.onEvent({
      type: "task:state",
      at: 1,
      by: "p",
      envId: "readout",
      path: "main/b_0",
      state: "CONFIGURED",
    }),
    false,
  );
  assertEquals(
    t.f.onEvent({
      type: "env:transition",
      at: 1,
      envId: "readout",
      event: "CONFIGURE",
      from: "DEPLOYED",
      to: "CONFIGURED",
      ok: true,
      by: "me@here",
      startedAt: 29,
      ms: 5,
    }),
    false,
  );
  const exited = {
    type: "task:exited" as const,
    at: 1,
    by: "p",
    agent: "p",
    host: "h",
    topologyId: "readout",
    path: "main/b_0",
    id: "1",
    pid: 2,
    code: 1,
    signal: null,
    willRestart: false,
    stopped: false,
  };
  assertEquals(t.f.onEvent(exited), false);
  current = record({ seq: 2, state: "RUNNING", runNumber: 1 });
  const next = t.nextFetch();
  assertEquals(
    t.f.onEvent({ type: "env:state", at: 1, by: "p", envId: "readout", state: "RUNNING", runNumber: 1 }),
    true,
  );
  assertEquals(
    t.f.onEvent({ type: "task:state", at: 1, by: "p", envId: "readout", path: "main/b_0", state: "RUNNING" }),
    true,
  );
  await next;
  assertEquals(t.fetches(), 2);
  assertEquals(t.emitted.at(-1)?.state, "RUNNING");
  t.f.stop();
});

Deno.test("ui envs: a take's env:claimed event shows the transition in progress on the held record; on another version it fetches", async () => {
  const t = feed(() => [record()]);
  await t.f.list();
  const controller = { by: "me@here", peer: "p", event: "RESET" as const, startedAt: 5, deadline: 99 };
  const claim = {
    type: "env:claimed" as const,
    at: 1,
    by: "p",
    envId: "readout",
    controller,
    runNumber: null,
    seq: 0,
  };
  assertEquals(t.f.onEvent({ ...claim, base: { seq: 1, updatedAt: 2 }, epoch: 4, updatedAt: 5 }), false);
  assertEquals(t.emitted.at(-1)?.controller, controller);
  assertEquals(t.emitted.at(-1)?.epoch, 4);
  assertEquals(t.fetches(), 1);
  // Granted on a version this copy never held: the arbiter's record is fetched.
  const next = t.nextFetch();
  assertEquals(t.f.onEvent({ ...claim, base: { seq: 7, updatedAt: 9 }, epoch: 6, updatedAt: 10 }), true);
  await next;
  assertEquals(t.fetches(), 2);
  t.f.stop();
});

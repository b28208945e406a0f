import { createLogger } from "../agent/log.ts";
import { FakeClock } from "../tests/_fake_clock.ts";
import type { TopologyRecord } from "../agent/wire/mod.ts";
import type { RunnerEvent } from "../agent/wire/mod.ts";
import { createMeshNode, createSwarmKey, EventHub, startMembership } from "../mesh/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../tests/_assert.ts";
import { CollectiveFailedError, CollectiveMismatchError } from "./errors.ts";
import { startCollService } from "./service.ts";

const SOURCE = `<topology name="t">
  <decltask name="T"><exe>sleep 1</exe></decltask>
  <main name="main"><group name="g" n="3"><task>T</task></group></main>
</topology>`;
const PATHS = ["main/g/T_0", "main/g/T_1", "main/g/T_2"];

/** One real agent's mesh node and membership, its collectives on a fake clock, three local tasks. */
async function oneAgent() {
  const node = await createMeshNode({ swarmKey: createSwarmKey(), listen: ["/ip4/127.0.0.1/tcp/0"] });
  const membership = await startMembership({
    node,
    self: () => ({ host: "test", slots: { total: 3, free: 0 }, version: "test", load: 0 }),
  });
  const record: TopologyRecord = {
    id: "t",
    name: "t",
    epoch: 1,
    version: 1,
    commander: "test",
    state: "active",
    source: SOURCE,
    file: "t.xml",
    vars: {},
    placement: { [node.peerId]: PATHS },
    updatedAt: 1,
  };
  const records = {
    get: (id: string) => (id === "t" ? record : undefined),
    changes: new EventHub<TopologyRecord>(),
  };
  const taskEvents = new EventHub<RunnerEvent>();
  const clock = new FakeClock();
  const coll = await startCollService({
    node,
    membership,
    records,
    taskEvents,
    clock,
    log: createLogger({ stderr: false }),
  });
  const caller = (i: number) => ({ topologyId: "t", path: PATHS[i]!, id: String(i), collectionPath: "" });
  return {
    coll,
    clock,
    taskEvents,
    caller,
    async [Symbol.asyncDispose]() {
      coll.stop();
      await membership.stop();
      await node.stop();
    },
  };
}

/** Settles `p` into a value or an error, to look at it later. */
function settle<T>(p: Promise<T>): { done: () => boolean; value: () => T | undefined; error: () => unknown } {
  let state: { ok: boolean; v?: T; e?: unknown } | undefined;
  p.then((v) => (state = { ok: true, v }), (e) => (state = { ok: false, e }));
  return { done: () => state !== undefined, value: () => state?.v, error: () => state?.e };
}

const turn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("coll service: a member's timeout ends the generation at its deadline, not before", async () => {
  await using a = await oneAgent();
  const first = settle(a.coll.contribute(a.caller(0), { op: "barrier", name: "b", timeoutMs: 5_000 }));
  const second = settle(a.coll.contribute(a.caller(1), { op: "barrier", name: "b" }));
  await turn();
  a.clock.tick(4_999);
  await turn();
  assert(!first.done() && !second.done(), "nobody is released or failed before the deadline");
  a.clock.tick(1);
  await turn();
  for (const s of [first, second]) {
    const e = s.error();
    assert(e instanceof CollectiveFailedError, `failed: ${e}`);
    assertStringIncludes(e.message, "timed out after 5 s (the timeout of main/g/T_0)");
    assertEquals([e.missing, e.generation], [["main/g/T_2"], 1]);
  }
  // The late member's first call is generation 1, which failed: it learns that at once.
  const late = settle(a.coll.contribute(a.caller(2), { op: "barrier", name: "b" }));
  await turn();
  assert(late.error() instanceof CollectiveFailedError);
  // Generation 2 starts clean and completes.
  const gen2 = PATHS.map((_, i) => a.coll.contribute(a.caller(i), { op: "barrier", name: "b" }));
  assertEquals((await Promise.all(gen2)).map((r) => r.generation), [2, 2, 2]);
  assertEquals(a.coll.open, 0);
});

Deno.test("coll service: a member that exits before taking part fails the waiters at once", async () => {
  await using a = await oneAgent();
  const waiting = [0, 1].map((i) =>
    settle(
      a.coll.contribute(a.caller(i), { op: "allreduce", name: "s", data: new TextEncoder().encode("1") }),
    )
  );
  await turn();
  a.taskEvents.emit({
    type: "task:exited",
    topologyId: "t",
    path: "main/g/T_2",
    id: "2",
    pid: 1,
    code: null,
    signal: "SIGKILL",
    willRestart: false,
    stopped: false,
    at: 0,
  });
  await turn();
  for (const w of waiting) {
    const e = w.error();
    assert(e instanceof CollectiveFailedError, `failed: ${e}`);
    assertEquals(e.reason, "member main/g/T_2 was killed by SIGKILL");
    assertEquals(e.missing, ["main/g/T_2"]);
  }
});

Deno.test("coll service: a member asking for another operation is refused and keeps its generation", async () => {
  await using a = await oneAgent();
  const b0 = a.coll.contribute(a.caller(0), { op: "barrier", name: "x" });
  const wrong = await a.coll.contribute(a.caller(1), { op: "allgather", name: "x" }).catch((e) => e);
  assert(wrong instanceof CollectiveMismatchError, `refused: ${wrong}`);
  assertStringIncludes(wrong.message, 'Collective "x" generation 1 is a barrier');
  const rest = [1, 2].map((i) => a.coll.contribute(a.caller(i), { op: "barrier", name: "x" }));
  assertEquals((await Promise.all([b0, ...rest])).map((r) => [r.generation, r.size]), [[1, 3], [1, 3], [
    1,
    3,
  ]]);
});

import { createMeshNode, createSwarmKey, request } from "../../mesh/mod.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { EventBatcher } from "../event_batcher.ts";
import { createLogger } from "../log.ts";
import { LEASE_PROTOCOL, LeaseResponseSchema } from "../wire/mod.ts";
import { createTaskRunner } from "../runner/mod.ts";
import { SlotTable } from "./slots.ts";
import { startTaskService } from "./task_service.ts";

Deno.test("slots: a lease is granted whole or refused whole", () => {
  const t = new SlotTable(3);
  const a = t.grant("topo", 1, ["a", "b"]);
  assertEquals(a.ok && [...a.slots.values()], ["0", "1"]);
  const b = t.grant("topo", 1, ["c", "d"]);
  assertEquals(b, { ok: false, reason: "full", free: 1, wanted: 2 });
  assertEquals(t.free, 1);
});

Deno.test("slots: commanders racing for an agent's slots get whole leases while they last, the rest are refused", async () => {
  const workDir = await Deno.makeTempDir({ prefix: "shoal-slots-" });
  const log = createLogger({ stderr: false });
  const swarmKey = createSwarmKey();
  await using agent = await createMeshNode({ swarmKey, listen: ["/ip4/127.0.0.1/tcp/0"] });
  const runner = createTaskRunner({ workDir, log });
  const slots = new SlotTable(5);
  await startTaskService({
    node: agent,
    runner,
    slots,
    events: new EventBatcher(agent),
    log,
    host: "h",
    onSlotsChanged: () => {},
  });
  const commanders = await Promise.all(Array.from({ length: 8 }, () => createMeshNode({ swarmKey })));
  try {
    // Connected first, so that the eight requests are in flight at once rather than queued behind dials.
    await Promise.all(commanders.map((c) => c.dial(agent.addresses()[0]!)));
    const answers = await Promise.all(commanders.map((c, i) =>
      request(c, agent.peerId, LEASE_PROTOCOL, {
        topologyId: `T${i}`,
        epoch: 1,
        commander: c.peerId,
        tasks: [0, 1].map((j) => ({
          topologyId: `T${i}`,
          path: `main/t_${j}`,
          id: String(j),
          name: "t",
          index: j,
          groupName: "main",
          exe: "sleep 600",
          maxRestarts: 0,
          sessionId: "",
        })),
      }, { schema: LeaseResponseSchema, timeoutMs: 30_000 })
    ));
    // Five slots hold two leases of two; the third would need 2 of the 1 left and every later one too.
    const granted = answers.filter((a) => a.granted);
    assertEquals(granted.length, 2);
    assertEquals(
      answers.flatMap((a) => a.granted ? [] : [[a.reason, a.free]]),
      Array(6).fill(["Only 1 free slot(s) for 2 task(s)", 1]),
    );
    assertEquals(slots.free, 1);
    assertEquals(runner.list().filter((t) => t.state === "running").length, 4);
    const leased = slots.topologies().sort();
    assertEquals(leased.length, 2);
    for (const id of leased) assertEquals(slots.leased(id).sort(), ["main/t_0", "main/t_1"]);
  } finally {
    await Promise.all(commanders.map((c) => c.stop()));
    await runner[Symbol.asyncDispose]();
    await Deno.remove(workDir, { recursive: true });
  }
});

Deno.test("slots: a stale epoch is refused, a newer one accepted", () => {
  const t = new SlotTable(4);
  t.grant("topo", 2, ["a"]);
  assertEquals(t.grant("topo", 1, ["b"]), { ok: false, reason: "stale-epoch", epoch: 1, current: 2 });
  assertEquals(t.grant("topo", 3, ["b"]).ok, true);
});

Deno.test("slots: a path already leased is refused as duplicate", () => {
  const t = new SlotTable(4);
  t.grant("topo", 1, ["a"]);
  assertEquals(t.grant("topo", 1, ["a"]), { ok: false, reason: "duplicate", path: "a" });
  assertEquals(t.grant("other", 1, ["a"]).ok, true);
});

Deno.test("slots: release frees named paths or the whole topology", () => {
  const t = new SlotTable(4);
  t.grant("topo", 1, ["a", "b", "c"]);
  assertEquals(t.release("topo", ["b", "zz"]), 1);
  assertEquals(t.leased("topo"), ["a", "c"]);
  assertEquals(t.release("topo"), 2);
  assertEquals([t.free, t.topologies()], [4, []]);
});

Deno.test("slots: an agent refusing for its health grants nothing, says why, and offers no slots", () => {
  const t = new SlotTable(2);
  t.refusing = "data disk has 100 MB free, under --min-free-disk 500 MB";
  assertEquals(t.grant("topo", 1, ["a"]), { ok: false, reason: "unhealthy", why: t.refusing });
  assertEquals([t.offered, t.free, t.leaseCounts.refused.unhealthy], [0, 2, 1]);
  t.refusing = undefined;
  assertEquals(t.grant("topo", 1, ["a"]).ok, true);
  assertEquals(t.offered, 1);
});

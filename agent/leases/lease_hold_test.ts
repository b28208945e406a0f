import { createMeshNode, createSwarmKey, request } from "../../mesh/mod.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import { EventBatcher } from "../event_batcher.ts";
import { createLogger } from "../log.ts";
import {
  LEASE_COMMIT_PROTOCOL,
  LEASE_PROTOCOL,
  LeaseCommitResponseSchema,
  LeaseResponseSchema,
} from "../wire/mod.ts";
import { createTaskRunner } from "../runner/mod.ts";
import { SlotTable } from "./slots.ts";
import { startTaskService } from "./task_service.ts";

Deno.test("lease hold: slots are reserved and nothing runs until the commit; a release or a lapse frees them", async () => {
  const workDir = await Deno.makeTempDir({ prefix: "shoal-hold-" });
  const log = createLogger({ stderr: false });
  const swarmKey = createSwarmKey();
  await using agent = await createMeshNode({ swarmKey, listen: ["/ip4/127.0.0.1/tcp/0"] });
  await using commander = await createMeshNode({ swarmKey });
  const runner = createTaskRunner({ workDir, log });
  const slots = new SlotTable(2);
  await startTaskService({
    node: agent,
    runner,
    slots,
    events: new EventBatcher(agent),
    log,
    host: "h",
    onSlotsChanged: () => {},
    holdMs: 300,
  });
  const hold = async (topologyId: string) => {
    const res = await request(commander, agent.addresses()[0]!, LEASE_PROTOCOL, {
      topologyId,
      epoch: 1,
      commander: commander.peerId,
      hold: true,
      tasks: [0, 1].map((j) => ({
        topologyId,
        path: `main/t_${j}`,
        id: String(j),
        name: "t",
        index: j,
        groupName: "main",
        exe: "sleep 600",
        maxRestarts: 0,
        sessionId: "",
      })),
    }, { schema: LeaseResponseSchema, timeoutMs: 30_000 });
    if (!res.granted || !res.hold) throw new Error(`not held: ${JSON.stringify(res)}`);
    return res.hold;
  };
  const commit = (id: string, yes: boolean) =>
    request(commander, agent.peerId, LEASE_COMMIT_PROTOCOL, { hold: id, commit: yes }, {
      schema: LeaseCommitResponseSchema,
      timeoutMs: 30_000,
    });
  try {
    const a = await hold("A");
    assertEquals([slots.free, runner.list().length], [0, 0], "held: slots taken, no task started");
    assertEquals((await commit(a, false)).ok, true);
    assertEquals(slots.free, 2, "released");

    const b = await hold("B");
    await waitFor(() => slots.free === 2, { timeout: 5_000, what: "the uncommitted hold to lapse" });
    const late = await commit(b, true);
    assertEquals([late.ok, runner.list().length], [false, 0], "a lapsed hold starts nothing");

    const c = await hold("C");
    const started = await commit(c, true);
    assertEquals(started.tasks.map((t) => t.state), ["running", "running"]);
    assertEquals(slots.free, 0);
  } finally {
    await runner[Symbol.asyncDispose]();
    await Deno.remove(workDir, { recursive: true });
  }
});

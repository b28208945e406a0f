import { assertEquals } from "../../tests/_assert.ts";
import { FakeClock } from "../../tests/_fake_clock.ts";
import { OrphanLeases } from "./orphan_leases.ts";
import type { TopologyRecord } from "../wire/mod.ts";

const ME = "agent-me";
const CMD = "commander-1";

/** The agent's side of the world, driven by the test: who is connected, which records exist. */
function world() {
  const connected = new Set<string>([CMD]);
  const records = new Map<string, TopologyRecord>();
  const stopped: { topologyId: string; paths: string[] }[] = [];
  const reported: string[][] = [];
  const held = new Set<string>();
  const warnings: string[] = [];
  const clock = new FakeClock(0);
  const orphans = new OrphanLeases({
    node: { peerId: ME, connectedPeers: () => [...connected] },
    desired: { get: (id: string) => records.get(id) },
    log: { warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) },
    stop: (topologyId, paths) => {
      stopped.push({ topologyId, paths });
      for (const p of paths) held.delete(`${topologyId}/${p}`);
      return Promise.resolve();
    },
    report: (e) => reported.push(e.paths),
    held: (topologyId, path) => held.has(`${topologyId}/${path}`),
    graceMs: 15_000,
    clock,
  });
  const lease = (topologyId: string, epoch: number, paths: string[], commander = CMD) => {
    for (const p of paths) held.add(`${topologyId}/${p}`);
    orphans.leased(topologyId, epoch, commander, paths);
  };
  const record = (id: string, epoch: number, placed: string[], state: "active" | "stopped" = "active") =>
    records.set(id, {
      id,
      name: id,
      epoch,
      version: 1,
      commander: CMD,
      state,
      source: "",
      file: "t.xml",
      vars: {},
      placement: { [ME]: placed },
      updatedAt: 0,
    });
  return { orphans, clock, connected, stopped, reported, held, warnings, lease, record };
}

Deno.test("orphan leases: a commander gone past the grace with its record unwritten loses its tasks here", () => {
  const w = world();
  w.lease("t", 1, ["main/a_0", "main/a_1"]);
  w.orphans.check(0);
  w.connected.delete(CMD);
  w.orphans.check(1_000);
  w.orphans.check(15_999);
  assertEquals(w.stopped, [], "within the grace nothing is stopped");
  w.orphans.check(16_000);
  assertEquals(w.stopped, [{ topologyId: "t", paths: ["main/a_0", "main/a_1"] }]);
  assertEquals(w.reported, [["main/a_0", "main/a_1"]]);
  assertEquals(w.warnings.length, 1);
  w.orphans.check(40_000);
  assertEquals(w.stopped.length, 1, "once");
  w.orphans.close();
});

Deno.test("orphan leases: the grace restarts when the commander comes back", () => {
  const w = world();
  w.lease("t", 1, ["main/a_0"]);
  w.connected.delete(CMD);
  w.orphans.check(0);
  w.orphans.check(10_000);
  w.connected.add(CMD);
  w.orphans.check(12_000);
  w.connected.delete(CMD);
  w.orphans.check(20_000);
  w.orphans.check(34_999);
  assertEquals(w.stopped, [], "15 s from the second departure, not the first");
  w.orphans.check(35_000);
  assertEquals(w.stopped.length, 1);
  w.orphans.close();
});

Deno.test("orphan leases: tasks the record confirms are kept, the others stopped", () => {
  const w = world();
  w.lease("t", 2, ["main/a_0", "main/a_1", "main/a_2"]);
  w.record("t", 2, ["main/a_0", "main/a_2"]);
  w.connected.delete(CMD);
  w.orphans.check(0);
  w.orphans.check(15_000);
  assertEquals(w.stopped, [{ topologyId: "t", paths: ["main/a_1"] }]);
  w.orphans.close();
});

Deno.test("orphan leases: a record of a later epoch or a stopped one ends the watch", () => {
  const w = world();
  w.lease("t", 1, ["main/a_0"]);
  w.lease("u", 1, ["main/b_0"]);
  w.lease("s", 1, ["main/c_0"]);
  w.record("t", 2, []); // taken over: the new commander owns the task now
  w.record("s", 1, [], "stopped");
  w.connected.delete(CMD);
  w.orphans.check(0);
  w.orphans.check(20_000);
  assertEquals(w.stopped, [{ topologyId: "u", paths: ["main/b_0"] }], "only the unrecorded one");
  w.orphans.close();
});

Deno.test("orphan leases: a record of an older epoch confirms nothing; stopped tasks are not stopped again", () => {
  const w = world();
  w.lease("t", 3, ["main/a_0", "main/a_1"]);
  w.record("t", 2, ["main/a_0", "main/a_1"]);
  w.held.delete("t/main/a_1"); // a refused activation already stopped it
  w.connected.delete(CMD);
  w.orphans.check(0);
  w.orphans.check(15_000);
  assertEquals(w.stopped, [{ topologyId: "t", paths: ["main/a_0"] }]);
  w.orphans.close();
});

Deno.test("orphan leases: leases of this agent's own commander are not watched", () => {
  const w = world();
  w.lease("t", 1, ["main/a_0"], ME);
  w.connected.clear();
  w.orphans.check(0);
  w.orphans.check(60_000);
  assertEquals(w.stopped, []);
  w.orphans.close();
});

Deno.test("orphan leases: the timer runs only while leases are watched, and stops them once the grace has passed", () => {
  const w = world();
  assertEquals(w.clock.timers.size, 0, "an idle agent has no timer");
  w.lease("t", 1, ["main/a_0"]);
  w.lease("u", 1, ["main/b_0"]);
  assertEquals(w.clock.timers.size, 1, "one timer for every watch");
  w.clock.tick(5_000);
  w.connected.delete(CMD);
  // The first check after the commander left (at 6 s) starts the grace.
  w.clock.tick(15_999);
  assertEquals(w.stopped.length, 0, "within the grace nothing is stopped");
  w.clock.tick(1);
  assertEquals(w.stopped.map((s) => s.topologyId).sort(), ["t", "u"]);
  assertEquals(w.warnings.length, 2);
  assertEquals(w.clock.timers.size, 0, "nothing left to watch: the timer is gone");
  w.clock.tick(60_000);
  assertEquals(w.stopped.length, 2, "and nothing is stopped twice");
});

Deno.test("orphan leases: a lease the record confirms ends its watch and the timer on the next tick", () => {
  const w = world();
  w.lease("t", 1, ["main/a_0"]);
  w.record("t", 1, ["main/a_0"]);
  w.clock.tick(999);
  assertEquals(w.clock.timers.size, 1, "not checked yet");
  w.clock.tick(1);
  assertEquals(w.clock.timers.size, 0);
  w.connected.delete(CMD);
  w.lease("u", 1, ["main/b_0"]);
  assertEquals(w.clock.timers.size, 1, "a new lease starts it again");
  w.clock.tick(30_000);
  assertEquals(w.stopped, [{ topologyId: "u", paths: ["main/b_0"] }], "the confirmed one is never stopped");
});

import { assertEquals } from "../tests/_assert.ts";
import { MemberTable } from "./member_table.ts";
import type { Heartbeat } from "./types.ts";

function hb(id: string, seq: number, startedAt = 1): Heartbeat {
  return {
    type: "heartbeat",
    id,
    host: "h",
    addrs: [],
    slots: { total: 2, free: 2 },
    version: "0",
    load: 0,
    startedAt,
    seq,
  };
}

Deno.test("membership: a first heartbeat makes a member join, later ones keep it alive", () => {
  const t = new MemberTable();
  assertEquals(t.observe(hb("a", 1), 0).map((e) => e.type), ["agent:joined"]);
  assertEquals(t.observe(hb("a", 2), 1000), []);
  assertEquals(t.get("a")?.state, "alive");
});

Deno.test("membership: a silent member turns suspect, then dead", () => {
  const t = new MemberTable({ suspectAfterMs: 3000, deadAfterMs: 5000 });
  t.observe(hb("a", 1), 0);
  assertEquals(t.sweep(2999), []);
  assertEquals(t.sweep(3000).map((e) => e.type), ["agent:suspect"]);
  assertEquals(t.sweep(5000).map((e) => e.type), ["agent:dead"]);
  assertEquals(t.sweep(9000), []);
  assertEquals(t.get("a")?.state, "dead");
});

Deno.test("membership: a suspect member that is heard again is alive", () => {
  const t = new MemberTable();
  t.observe(hb("a", 1), 0);
  t.suspect("a", 10);
  assertEquals(t.observe(hb("a", 2), 20).map((e) => e.type), ["agent:alive"]);
});

Deno.test("membership: stale and replayed heartbeats are ignored", () => {
  const t = new MemberTable();
  t.observe(hb("a", 5), 0);
  t.sweep(6000);
  assertEquals(t.observe(hb("a", 4), 6001), []);
  assertEquals(t.get("a")?.state, "dead");
});

Deno.test("membership: a restarted agent joins again", () => {
  const t = new MemberTable();
  t.observe(hb("a", 9), 0);
  t.sweep(6000);
  assertEquals(t.observe(hb("a", 1, 2), 7000).map((e) => e.type), ["agent:joined"]);
});

Deno.test("membership: a member that left stays left and is forgotten later", () => {
  const t = new MemberTable({ forgetAfterMs: 100 });
  t.observe(hb("a", 1), 0);
  assertEquals(t.leave("a", 1).map((e) => e.type), ["agent:left"]);
  assertEquals(t.observe(hb("a", 2), 2), []);
  t.sweep(200);
  assertEquals(t.members(), []);
});

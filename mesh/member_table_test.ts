import { assertEquals } from "../tests/_assert.ts";
import { MemberTable } from "./member_table.ts";
import type { MemberMeta, MemberUpdate } from "./swim_types.ts";

const meta = (startedAt = 1): MemberMeta => ({
  host: "h",
  slots: { total: 2, free: 2 },
  version: "0",
  load: 0,
  startedAt,
  gpus: 0,
  labels: {},
  group: "",
});
const alive = (id: string, inc: number, startedAt = 1): MemberUpdate => ({
  id,
  inc,
  st: "alive",
  addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${id}`],
  meta: meta(startedAt),
});
const types = (r: { events: { type: string }[] }) => r.events.map((e) => e.type);

function table(): MemberTable {
  const t = new MemberTable("me");
  t.setSelf(100, [], meta(), 0);
  return t;
}

Deno.test("membership: a first alive update makes a member join; the same incarnation again is no news", () => {
  const t = table();
  const first = t.apply(alive("a", 5), 0);
  assertEquals([types(first), first.rebroadcast], [["agent:joined"], true]);
  const again = t.apply(alive("a", 5), 10);
  assertEquals([types(again), again.rebroadcast], [[], false]);
  assertEquals(t.get("a")?.state, "alive");
  assertEquals(t.size, 2);
});

Deno.test("membership: suspicion at the member's incarnation, confirmations from others, then dead", () => {
  const t = table();
  t.apply(alive("a", 5), 0);
  const s = t.apply({ id: "a", inc: 5, st: "suspect", from: "b" }, 1);
  assertEquals([types(s), s.suspicion], [["agent:suspect"], { id: "a", inc: 5, confirmations: 0 }]);
  assertEquals(t.apply({ id: "a", inc: 5, st: "suspect", from: "b" }, 2).rebroadcast, false);
  assertEquals(t.apply({ id: "a", inc: 5, st: "suspect", from: "c" }, 3).suspicion?.confirmations, 1);
  const d = t.apply({ id: "a", inc: 5, st: "dead", from: "b" }, 4);
  assertEquals(types(d), ["agent:dead"]);
  assertEquals(t.dead.has("a"), true);
  assertEquals(t.live.has("a"), false);
});

Deno.test("membership: a higher incarnation refutes suspicion; an older one is ignored", () => {
  const t = table();
  t.apply(alive("a", 5), 0);
  assertEquals(types(t.apply({ id: "a", inc: 4, st: "suspect", from: "b" }, 1)), []);
  t.apply({ id: "a", inc: 5, st: "suspect", from: "b" }, 1);
  assertEquals(types(t.apply(alive("a", 5), 2)), []);
  assertEquals(types(t.apply(alive("a", 6), 2)), ["agent:alive"]);
  assertEquals(t.get("a")?.state, "alive");
});

Deno.test("membership: told that it is suspect or dead, a member refutes with a higher incarnation", () => {
  const t = table();
  const r = t.apply({ id: "me", inc: 100, st: "suspect", from: "b" }, 1);
  assertEquals([r.refute?.st, r.refute?.inc], ["alive", 101]);
  assertEquals(t.selfIncarnation, 101);
  assertEquals(t.apply({ id: "me", inc: 100, st: "dead", from: "b" }, 1).refute, undefined);
  assertEquals(t.apply({ id: "me", inc: 101, st: "dead", from: "b" }, 1).refute?.inc, 102);
});

Deno.test("membership: in a push-pull a remote 'dead' only makes the member suspect, so it can refute", () => {
  const t = table();
  t.apply(alive("a", 5), 0);
  assertEquals(types(t.apply({ id: "a", inc: 5, st: "dead", from: "b" }, 1, true)), ["agent:suspect"]);
});

Deno.test("membership: a restarted member (new start time, higher incarnation) joins again; a leave is final", () => {
  const t = table();
  t.apply(alive("a", 5, 1), 0);
  assertEquals(types(t.apply({ id: "a", inc: 6, st: "left" }, 1)), ["agent:left"]);
  assertEquals(types(t.apply(alive("a", 6, 1), 2)), []);
  assertEquals(types(t.apply(alive("a", 900, 2), 3)), ["agent:joined"]);
});

Deno.test("membership: dead and left members are forgotten after the delay, in order", () => {
  const t = table();
  t.apply(alive("a", 1), 0);
  t.apply(alive("b", 1), 0);
  t.apply({ id: "a", inc: 1, st: "dead", from: "x" }, 10);
  t.apply({ id: "b", inc: 2, st: "left" }, 20);
  t.forget(1_009, 1_000);
  assertEquals(t.members().map((m) => m.id).sort(), ["a", "b", "me"]);
  t.forget(1_010, 1_000);
  assertEquals(t.members().map((m) => m.id).sort(), ["b", "me"]);
  assertEquals(t.dead.size, 0);
  t.forget(1_020, 1_000);
  assertEquals(t.members().map((m) => m.id), ["me"]);
});

Deno.test("membership: a push-pull answer carries only what the asker lacks, holds older or in another state", () => {
  const t = table();
  t.apply(alive("a", 5), 0);
  t.apply(alive("b", 3), 0);
  t.apply(alive("c", 1), 0);
  t.apply({ id: "c", inc: 1, st: "suspect", from: "x" }, 1);
  const mine = t.updates();
  assertEquals(t.updatesFor(mine), [], "two members that agree exchange nothing");
  const theirs = [alive("a", 5), alive("b", 2), alive("c", 1)];
  assertEquals(t.updatesFor(theirs).map((u) => [u.id, u.inc, u.st]).sort(), [
    ["b", 3, "alive"],
    ["c", 1, "suspect"],
    ["me", 100, "alive"],
  ]);
});

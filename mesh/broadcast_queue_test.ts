import { assertEquals } from "../tests/_assert.ts";
import { BroadcastQueue } from "./broadcast_queue.ts";
import type { MemberUpdate } from "./swim_types.ts";

const up = (id: string, inc = 1): MemberUpdate => ({ id, inc, st: "alive" });
const ids = (us: MemberUpdate[]) => us.map((u) => u.id);

Deno.test("broadcast queue: least sent first, each update leaves after its transmit limit", () => {
  const q = new BroadcastQueue();
  q.push(up("a"));
  assertEquals(ids(q.take(8, 2)), ["a"]);
  q.push(up("b"));
  assertEquals(ids(q.take(1, 2)), ["b"], "b was sent fewer times than a");
  q.push(up("c"));
  assertEquals(ids(q.take(8, 2)).sort(), ["a", "b", "c"]);
  assertEquals(q.size, 1, "a and b left after their second send");
  assertEquals(ids(q.take(8, 2)), ["c"]);
  assertEquals(q.size, 0);
});

Deno.test("broadcast queue: a newer update about a member replaces the queued one and starts afresh", () => {
  const q = new BroadcastQueue();
  q.push(up("a", 1));
  q.take(8, 3);
  q.push(up("a", 2));
  assertEquals(q.size, 1);
  assertEquals(q.take(8, 3), [up("a", 2)]);
});

Deno.test("broadcast queue: nothing goes back to the peer it came from, yet that send counts", () => {
  const q = new BroadcastQueue();
  q.push(up("a"), false, "p");
  assertEquals(q.take(8, 2, "p"), [], "p sent it to us");
  assertEquals(ids(q.take(8, 2, "r")), ["a"], "r does not hold it");
  assertEquals(q.size, 0, "two sends, one of them to a holder: the limit is reached as without the filter");
});

Deno.test("broadcast queue: peers that sent the same update again, or were sent it, are skipped", () => {
  const q = new BroadcastQueue();
  q.push(up("a"));
  q.heard(up("a"), "p");
  q.heard(up("a", 2), "r");
  assertEquals(q.take(8, 9, "p"), [], "p sent this very update");
  assertEquals(ids(q.take(8, 9, "r")), ["a"], "r sent another incarnation: it may lack this one");
  assertEquals(q.take(8, 9, "r"), [], "r was sent it just now");
  assertEquals(ids(q.take(8, 9)), ["a"], "a take for no one in particular returns everything");
});

Deno.test("broadcast queue: an eager update replacing a lazy one is eager; lazy ones schedule nothing", () => {
  const q = new BroadcastQueue();
  q.push(up("a"), true);
  assertEquals(q.eager, 0);
  q.push(up("a", 2));
  assertEquals(q.eager, 1);
  q.push(up("a", 3), true);
  assertEquals(q.eager, 1, "replacing an eager update keeps it eager");
  q.take(8, 1);
  assertEquals(q.eager, 0);
});

Deno.test("broadcast queue: a send to a peer that holds everything spends no more transmits than any other", () => {
  const q = new BroadcastQueue();
  for (const id of ["a", "b", "c", "d"]) q.push(up(id), false, "p");
  assertEquals(q.take(2, 2, "p"), [], "p holds all four");
  assertEquals(ids(q.take(8, 2, "r")).sort(), ["a", "b", "c", "d"], "only two were counted for p");
  assertEquals(q.size, 2, "the two counted twice left; the other two have one send left");
});

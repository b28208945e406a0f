import { assertEquals } from "../../tests/_assert.ts";
import type { Member } from "../../mesh/mod.ts";
import { ClaimTable, stillAlive } from "./claims.ts";

Deno.test("claims: an epoch goes to the first claimant only; asking again for it is granted", () => {
  const t = new ClaimTable();
  assertEquals(t.decide("topo", 2, "a", 1).granted, true);
  assertEquals(t.decide("topo", 2, "b", 1), { granted: false, epoch: 2, claimant: "a", recordEpoch: 1 });
  assertEquals(t.decide("topo", 2, "a", 1).granted, true);
});

Deno.test("claims: a later epoch overtakes; an epoch the record already reached is refused", () => {
  const t = new ClaimTable();
  t.decide("topo", 2, "a", 1);
  assertEquals(t.decide("topo", 3, "b", 1).granted, true);
  assertEquals(t.decide("topo", 2, "a", 1).granted, false);
  assertEquals(t.decide("other", 4, "c", 4).granted, false);
  assertEquals(t.decide("other", 5, "c", 4).granted, true);
});

Deno.test("claims: of two claimants asking a majority of five, at most one wins", () => {
  const agents = Array.from({ length: 5 }, () => new ClaimTable());
  // Interleaved requests, as two recoveries racing would send them.
  const votes = { a: 0, b: 0 };
  for (const [i, t] of agents.entries()) {
    const first = i % 2 === 0 ? "a" : "b";
    const second = first === "a" ? "b" : "a";
    if (t.decide("topo", 2, first, 1).granted) votes[first]++;
    if (t.decide("topo", 2, second, 1).granted) votes[second]++;
  }
  assertEquals(votes.a + votes.b, 5);
  assertEquals([votes.a >= 3, votes.b >= 3].filter(Boolean).length, 1);
});

Deno.test("claims: a voter that still sees an agent to be re-placed alive (or is one) disagrees", () => {
  const m = (id: string, state: "alive" | "suspect" | "dead") => ({ id, state }) as unknown as Member;
  const view = [m("a", "alive"), m("b", "suspect"), m("c", "dead")];
  assertEquals(stillAlive(["a", "b", "c", "me"], "me", view), ["a", "b", "me"]);
  assertEquals(stillAlive(["c"], "me", view), []);
});

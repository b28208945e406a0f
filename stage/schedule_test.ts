import { assertEquals } from "../tests/_assert.ts";
import { seededRandom } from "../mesh/mod.ts";
import { Bitmap } from "./bitmap.ts";
import { type PeerState, pickNext } from "./schedule.ts";

function bits(size: number, set: number[]): Bitmap {
  const b = new Bitmap(size);
  for (const i of set) b.set(i);
  return b;
}

function peer(id: string, init: Partial<PeerState> = {}): PeerState {
  return { id, seed: false, inflight: 0, backoffUntil: 0, ...init };
}

const base = { inflight: new Set<number>(), bad: new Set<string>(), now: 1_000, random: seededRandom(7) };

Deno.test("stage schedule: the rarest piece among other pullers goes first, to the least busy holder", () => {
  const a = peer("a", { bits: bits(4, [0, 1, 2]), inflight: 2 });
  const b = peer("b", { bits: bits(4, [0, 1]) });
  const c = peer("c", { bits: bits(4, [0]) });
  const next = pickNext({ ...base, have: bits(4, []), peers: [a, b, c], allowSeed: false });
  assertEquals([next?.piece, next?.peer.id], [2, "a"]);
  const tie = pickNext({ ...base, have: bits(4, [2]), peers: [a, b, c], allowSeed: false });
  assertEquals([tie?.piece, tie?.peer.id], [1, "b"]);
});

Deno.test("stage schedule: a seed is asked only for pieces no other peer holds, and only when allowed", () => {
  const seed = peer("seed", { seed: true });
  const a = peer("a", { bits: bits(3, [0]) });
  const allowed = pickNext({ ...base, have: bits(3, []), peers: [seed, a], allowSeed: true });
  assertEquals(allowed?.peer.id, "seed");
  assertEquals(allowed!.piece !== 0, true);
  const notAllowed = pickNext({ ...base, have: bits(3, []), peers: [seed, a], allowSeed: false });
  assertEquals([notAllowed?.piece, notAllowed?.peer.id], [0, "a"]);
  assertEquals(pickNext({ ...base, have: bits(3, [0]), peers: [seed, a], allowSeed: false }), undefined);
});

Deno.test("stage schedule: a peer that sent a corrupt chunk is not asked for it again; a backed-off peer waits", () => {
  const seed = peer("seed", { seed: true });
  const a = peer("a", { bits: bits(2, [0, 1]) });
  const bad = new Set(["a\u00000"]);
  const next = pickNext({ ...base, bad, have: bits(2, [1]), peers: [seed, a], allowSeed: true });
  assertEquals([next?.piece, next?.peer.id], [0, "seed"]);
  const off = peer("a", { bits: bits(2, [0, 1]), backoffUntil: 5_000 });
  assertEquals(pickNext({ ...base, have: bits(2, []), peers: [off], allowSeed: true }), undefined);
  assertEquals(
    pickNext({ ...base, have: bits(2, []), peers: [off], allowSeed: true, now: 6_000 })?.peer.id,
    "a",
  );
});

Deno.test("stage schedule: each puller asks a seed for its own stripe of pieces first, then for any", () => {
  const seed = peer("seed", { seed: true });
  const stripe = { index: 1, of: 3 };
  for (let i = 0; i < 20; i++) {
    const next = pickNext({ ...base, have: bits(9, []), peers: [seed], allowSeed: true, stripe });
    assertEquals(next!.piece % 3, 1);
  }
  const rest = pickNext({ ...base, have: bits(9, [1, 4, 7]), peers: [seed], allowSeed: true, stripe });
  assertEquals(rest!.piece % 3 === 1, false);
});

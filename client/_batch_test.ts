import { assertEquals, assertRejects } from "../tests/_assert.ts";
import { coalesced, type Outcome } from "./_batch.ts";

/** A batch sender whose requests the test lets finish one by one. */
function sender() {
  const requests: { inputs: number[]; finish: () => void }[] = [];
  const send = (inputs: number[]) =>
    new Promise<Outcome<number>[]>((resolve) => {
      requests.push({
        inputs,
        finish: () =>
          resolve(inputs.map((i) =>
            i < 0 ? { ok: false, error: new RangeError(`bad ${i}`) } : { ok: true, value: i * 10 }
          )),
      });
    });
  return { requests, send };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("coalesced: one turn's calls go together; calls made while one is in flight go in the next", async () => {
  const s = sender();
  const call = coalesced(s.send, () => 1);
  const first = [call(1), call(2)];
  await settle();
  assertEquals(s.requests.map((r) => r.inputs), [[1, 2]]);
  const second = [call(3), call(-4), call(5)];
  await settle();
  assertEquals(s.requests.length, 1, "nothing more while the first is in flight");
  s.requests[0]!.finish();
  assertEquals(await Promise.all(first), [10, 20]);
  await settle();
  assertEquals(s.requests.map((r) => r.inputs), [[1, 2], [3, -4, 5]]);
  s.requests[1]!.finish();
  const out = await Promise.allSettled(second);
  assertEquals(
    out.map((o) => o.status),
    ["fulfilled", "rejected", "fulfilled"],
    "a failed input fails alone",
  );
});

Deno.test("coalesced: limits cut batches; an aborted call is not sent; a failed request fails its calls", async () => {
  const s = sender();
  const call = coalesced(s.send, (i) => Math.abs(i), { maxItems: 2, maxBytes: 10 });
  const stop = new AbortController();
  const calls = [call(1), call(2), call(3), call(9)];
  const aborted = call(4, stop.signal).then(() => undefined, (err: Error) => err);
  stop.abort(new Error("no longer wanted"));
  await settle();
  s.requests[0]!.finish();
  await settle();
  s.requests[1]!.finish();
  await settle();
  s.requests[2]!.finish();
  assertEquals(await Promise.all(calls), [10, 20, 30, 90]);
  assertEquals(s.requests.map((r) => r.inputs), [[1, 2], [3], [9]], "2 items at most, 10 bytes at most");
  assertEquals((await aborted)?.message, "no longer wanted");
  const failing = coalesced<number, number>(() => Promise.reject(new Error("socket closed")), () => 1);
  assertEquals((await assertRejects(() => failing(1), Error)).message, "socket closed");
});

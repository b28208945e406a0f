import { EventHub } from "../../mesh/event_hub.ts";
import type { MembershipEvent } from "../../mesh/mod.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { createLogger } from "../log.ts";
import { SYNCERS_PER_RETURN, syncOnReturn } from "./heal_sync.ts";

function setup(live: number, draws: number[]) {
  const events = new EventHub<MembershipEvent>();
  const pulls: string[] = [];
  const syncs: string[] = [];
  const off = syncOnReturn({
    membership: { events },
    liveCount: () => live,
    desired: { syncFrom: (id: string) => (pulls.push(id), Promise.resolve(0)) },
    replication: { syncWith: (id: string) => (syncs.push(id), Promise.resolve(0)) },
    log: createLogger({ stderr: false }),
    random: () => draws.shift() ?? 0,
  });
  const say = (type: MembershipEvent["type"], id: string) => events.emit({ type, id, host: "h", at: 0 });
  return { say, pulls, syncs, off };
}

Deno.test("heal sync: in a small mesh every agent syncs with a peer back from the dead, once per return", () => {
  const { say, pulls, syncs, off } = setup(SYNCERS_PER_RETURN, [0.99]);
  say("agent:alive", "a");
  assertEquals(pulls, [], "a peer that was never dead is no return");
  say("agent:dead", "a");
  say("agent:alive", "a");
  say("agent:alive", "a");
  assertEquals([pulls, syncs], [["a"], ["a"]]);
  off();
});

Deno.test("heal sync: in a large mesh about SYNCERS_PER_RETURN agents sync with each returner, whatever N", () => {
  const live = 100;
  const below = (SYNCERS_PER_RETURN - 0.5) / live;
  const above = (SYNCERS_PER_RETURN + 0.5) / live;
  const { say, pulls, syncs, off } = setup(live, [above, below]);
  say("agent:dead", "a");
  say("agent:alive", "a");
  assertEquals(pulls, [], `a draw of ${above} is not among the ${SYNCERS_PER_RETURN} in ${live}`);
  say("agent:dead", "b");
  say("agent:joined", "b");
  assertEquals([pulls, syncs], [["b"], ["b"]]);
  off();
});

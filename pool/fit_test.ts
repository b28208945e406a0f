import { assert, assertEquals } from "../tests/_assert.ts";
import type { Member } from "../mesh/mod.ts";
import { expandRecord } from "../commander/mod.ts";
import { agentSlots, fitsOn } from "./fit.ts";

function member(
  id: string,
  host: string,
  free: number,
  total: number,
  state: Member["state"] = "alive",
): Member {
  return {
    id,
    host,
    addrs: [],
    slots: { free, total },
    version: "test",
    load: 0,
    startedAt: 0,
    gpus: 0,
    labels: {},
    group: "",
    state,
    lastSeen: 0,
  };
}

/** Two tasks that must run on a host named `gpu-*`, at most one per host. */
const source = `<topology name="t">
  <declrequirement name="onGpu" type="hostname" value="^gpu-[0-9]+$" />
  <declrequirement name="onePerHost" type="maxinstances" value="1" />
  <decltask name="T"><exe>sleep 1</exe><requirements><name>onGpu</name><name>onePerHost</name></requirements></decltask>
  <main name="main"><group name="g" n="2"><task>T</task></group></main>
</topology>`;
const expanded = expandRecord({ source, file: "t.xml", vars: {} });

Deno.test("pool fit: the queue's fit keeps the placement rules (hostname, maxinstances), not just a count", () => {
  // Six free slots, but only one host matches: the topology does not fit.
  const oneGpu = [member("a", "gpu-1", 2, 2), member("b", "cpu-1", 4, 4)];
  assertEquals(agentSlots(oneGpu).reduce((n, a) => n + a.freeSlots, 0), 6);
  assert(!fitsOn(expanded, agentSlots(oneGpu)), "two tasks at most one per host on one gpu host");
  // A second matching host with a free slot: it fits.
  const twoGpus = [...oneGpu, member("c", "gpu-2", 1, 1)];
  assert(fitsOn(expanded, agentSlots(twoGpus)));
  // That host busy: no fit now, but it would fit the whole pool (it waits rather than being passed over).
  const busy = [...oneGpu, member("c", "gpu-2", 0, 1)];
  assert(!fitsOn(expanded, agentSlots(busy)));
  assert(fitsOn(expanded, agentSlots(busy, true)));
});

Deno.test("pool fit: dead agents and agents with no slots are no room", () => {
  const members = [
    member("a", "gpu-1", 1, 1),
    member("c", "gpu-2", 1, 1, "dead"),
    member("d", "gpu-3", 0, 0),
  ];
  assertEquals(agentSlots(members).map((a) => a.id), ["a"]);
  assert(!fitsOn(expanded, agentSlots(members, true)));
});

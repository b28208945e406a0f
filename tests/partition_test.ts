/**
 * A mesh cut in two by the network heals by itself: six agents in two network namespaces on one bridge,
 * the link of one namespace taken down until each half declares the other dead, then brought back up. The
 * views must become whole again without anyone's help (SWIM's reconnect to dead members, push-pull). Needs
 * root and `ip` (iproute2); `.ci/setup-netns.sh` provides it.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSwarmKey } from "../mesh/mod.ts";
import { assert } from "./_assert.ts";
import {
  allSee,
  createNamespaces,
  type NsAgent,
  skipWithoutNetns,
  startNsAgent,
  stopNsAgents,
  views,
} from "./_netns.ts";
import { waitFor } from "./_wait.ts";

Deno.test({
  name: "partition: two halves cut apart declare each other dead, and after the heal the view is whole again",
  ignore: skipWithoutNetns("partition tests"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    using net = createNamespaces(2);
    const dir = mkdtempSync(join(tmpdir(), "shoal-partition-"));
    const swarmKeyFile = join(dir, "swarm.key");
    writeFileSync(swarmKeyFile, createSwarmKey());
    const agents: NsAgent[] = [];
    try {
      const first = await startNsAgent(net, 0, { name: "a0", dir, swarmKeyFile });
      agents.push(first);
      for (const [side, name] of [[0, "a1"], [0, "a2"], [1, "b0"], [1, "b1"], [1, "b2"]] as const) {
        agents.push(await startNsAgent(net, side, { name, dir, swarmKeyFile, bootstrap: first.addr }));
      }
      await waitFor(() => allSee(agents, "alive"), {
        timeout: 20_000,
        detail: () => views(agents),
        what: "all six to see each other alive",
      });

      net.cut(1);
      // Only timeouts, no refused connections: suspicion runs its long course (4 × log10 N s and more).
      await waitFor(() => allSee(agents, "dead", true), {
        timeout: 60_000,
        detail: () => views(agents),
        what: "each half to see the other dead",
      });

      const healed = Date.now();
      net.heal(1);
      await waitFor(() => allSee(agents, "alive"), {
        timeout: 30_000,
        detail: () => views(agents),
        what: "the view to be whole again after the heal",
      });
      const ms = Date.now() - healed;
      console.log(`partition: view whole again ${ms} ms after the heal`);
      assert(ms < 30_000);
    } finally {
      await stopNsAgents(agents);
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

/**
 * Chaos: an agent SIGKILLed and restarted at once with the same data dir (the same peer identity), while
 * the mesh re-places the tasks it held. Its tasks died with it; whatever the timing — back before the mesh
 * declared it dead, or after its tasks were re-placed — every task path ends running exactly once, the
 * record lists exactly what runs (never the restarted agent for a task it no longer runs), and the
 * restarted agent offers its slots again.
 *
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { topologyRecord } from "../_commanders.ts";
import { processesWith, ps, spawnAgent, startMesh, type TestAgent, writeTopology } from "../_harness.ts";
import { holdsUntil, waitFor } from "../_wait.ts";

const RUN = 10_000 + Math.floor(Math.random() * 80_000);
const MARK = `sleep 6301${RUN}`;

for (const late of [false, true]) {
  Deno.test({
    name: `chaos: an agent restarted with its data dir ${
      late ? "after its tasks were re-placed" : "at once"
    } ends with each task once`,
    sanitizeResources: false,
    async fn() {
      await using mesh = await startMesh({ agents: 3, slots: 1 });
      const fgArgs = (name: string) => [
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--bootstrap",
        mesh.agents[0]!.addrs[0]!,
        "--slots",
        "4",
        "--host",
        `fg-${name}`,
      ];
      const f1 = spawnAgent(mesh.home, "f1", fgArgs("1"));
      await using f2 = spawnAgent(mesh.home, "f2", fgArgs("2"));
      const fg: TestAgent[] = [await f1.ready(), await f2.ready()];
      await waitFor(async () => {
        const view = await mesh.viewOf(mesh.agents[0]!);
        return fg.every((x) => view.members.some((m) => m.id === x.id && m.state === "alive"));
      }, { timeout: 15_000, what: "the foreground agents to join" });
      const file = writeTopology(
        mesh.home.dir,
        "fg.xml",
        `<topology name="Fg">
  <declrequirement name="Fg" type="hostname" value="fg-.*"/>
  <decltask name="S"><exe reachable="true">${MARK}</exe><requirements><name>Fg</name></requirements></decltask>
  <main name="main"><group name="g" n="4"><task>S</task></group></main>
</topology>`,
      );
      // The CLI's own view may lag the agent's: "Cannot place" until it hears of the foreground agents.
      let last = "";
      await waitFor(async () => {
        const act = await mesh.run(["topology", "activate", file]);
        last = act.stderr;
        if (act.code !== 0 && !/Cannot place/.test(act.stderr)) throw new Error(act.stderr);
        return act.code === 0;
      }, { timeout: 20_000, interval: 500, what: `the activation (${last})` });
      const before = await ps(mesh);
      // The victim: a foreground agent holding tasks (both do, or one holds all four).
      const victim = fg.find((x) => before.some((t) => t.agent === x.id))!;
      const victimProc = victim.id === fg[0]!.id ? f1 : f2;
      const held = before.filter((t) => t.agent === victim.id).map((t) => t.path).sort();
      victimProc.kill("SIGKILL");
      await victimProc.exited;
      if (late) {
        await waitFor(async () => {
          const record = await topologyRecord(mesh, mesh.agents[0]!, "Fg");
          return processesWith(MARK).length === 4 && record && !record.placement[victim.id];
        }, {
          timeout: 90_000,
          what: "the victim's tasks to be re-placed",
          // What the agents did about it (once, under CI's load, nothing happened within 60 s).
          detail: () =>
            [...mesh.agents, ...fg.filter((x) => x.id !== victim.id)].flatMap((a) => {
              const log = Deno.readTextFileSync(`${a.dataDir}/agent.log`).split("\n");
              return log.filter((l) => /re-plac|claim|majority|answer a ping|dead|lost|refus/.test(l))
                .slice(-15).map((l) => `${a.id.slice(-6)}: ${l}`);
            }).join("\n"),
        });
      }
      // The same data dir: the same peer ID, a new process.
      await using again = spawnAgent(mesh.home, victim.id === fg[0]!.id ? "f1" : "f2", fgArgs("x"));
      const back = await again.ready();
      assertEquals(back.id, victim.id, "the restarted agent has the same identity");
      console.log(
        `chaos restart (${
          late ? "after the re-placing" : "at once"
        }): the victim held ${held.length} task(s)`,
      );

      // Settles: four tasks, each once, where the record says; the restarted agent alive with free slots.
      const settled = async () => {
        const tasks = (await ps(mesh)).filter((t) => t.state === "running");
        const record = await topologyRecord(mesh, mesh.agents[0]!, "Fg");
        const placed = Object.entries(record?.placement ?? {}).flatMap(([a, ps]) =>
          ps.map((p) => `${a} ${p}`)
        );
        const running = tasks.map((t) => `${t.agent} ${t.path}`);
        return processesWith(MARK).length === 4 && tasks.length === 4 &&
          JSON.stringify(placed.sort()) === JSON.stringify(running.sort());
      };
      await waitFor(settled, {
        timeout: 45_000,
        interval: 250,
        what: "each task once, where the record says",
      })
        .catch(async (err) => {
          const record = await topologyRecord(mesh, mesh.agents[0]!, "Fg").catch(() => undefined);
          const log = Deno.readTextFileSync(`${again.dataDir}/agent.log`).split("\n").slice(-30).join("\n");
          const member = (await mesh.viewOf(mesh.agents[0]!)).members.find((m) => m.id === victim.id);
          throw new Error(
            `${(err as Error).message}: ${(err as Error).cause}\nrecord: ${
              JSON.stringify(record?.placement)
            }` +
              ` epoch ${record?.epoch}\nview: ${JSON.stringify(member)} now at ${back.addrs}\n` +
              `the restarted agent's log:\n${log}`,
          );
        });
      const view = await mesh.viewOf(mesh.agents[0]!);
      assertEquals(view.members.find((m) => m.id === victim.id)?.state, "alive");
      const at = Date.now();
      await holdsUntil(() => processesWith(MARK).length === 4, () => Date.now() - at > 3_000, {
        timeout: 10_000,
        holds: "four instances, no more",
        what: "3 s",
      });
      assertEquals((await mesh.run(["topology", "stop"])).code, 0);
    },
  });
}

/**
 * The contract every RMS plug-in passes (the shared suite run by `rms_localhost_test.ts`,
 * `rms_ssh_test.ts` and `rms_slurm_test.ts`): submit N agents with S slots and a group into a new mesh
 * and into an existing one, report their jobs, status and cancel.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createMeshNode,
  type MeshNode,
  readSwarmKey,
  request,
  type View,
  VIEW_PROTOCOL,
  ViewSchema,
  writeSwarmKey,
} from "../mesh/mod.ts";
import { type AgentJob, getRms, type RmsConfig, type SessionRef, type SubmitEvent } from "../rms/mod.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { SHOAL_BIN } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

/** What the suite needs from a plug-in's environment (sshd, Slurm…). */
export interface ContractEnv extends AsyncDisposable {
  /** The plug-in config for agents reachable from this test (listening on 127.0.0.1). */
  config?: (dir: string) => RmsConfig;
  /** Agents in the first submission (≥ 2). */
  count: number;
}

/** Registers the contract suite for plug-in `name`. */
export function rmsContract(
  name: string,
  makeEnv: (dir: string) => Promise<ContractEnv>,
  options: { ignore?: boolean; /** Tells apart runs of one plug-in in other modes. */ variant?: string } = {},
): void {
  Deno.test({
    name: `rms contract (${name}${
      options.variant ? `, ${options.variant}` : ""
    }): submit, join an existing mesh, status, cancel`,
    ignore: options.ignore ?? false,
    fn: async (t) => {
      const dir = mkdtempSync(join(tmpdir(), `shoal-rms-${name}-`));
      const jobs: AgentJob[] = [];
      const rms = getRms(name);
      let probe: MeshNode | undefined;
      try {
        await using env = await makeEnv(dir);
        const swarmKeyFile = join(dir, "swarm.key");
        await writeSwarmKey(swarmKeyFile);
        const session = (bootstrap: string[]): SessionRef => ({
          name: "contract",
          id: "contract-session",
          dir,
          swarmKeyFile,
          bootstrap,
        });
        probe = await createMeshNode({ swarmKey: await readSwarmKey(swarmKeyFile) });
        const viewOf = (job: AgentJob): Promise<View> =>
          request(probe!, job.addrs![0]!, VIEW_PROTOCOL, {}, { schema: ViewSchema, timeoutMs: 5_000 });
        const submit = async (count: number, bootstrap: string[]) => {
          const events: SubmitEvent[] = [];
          const started = await rms.submit({
            session: session(bootstrap),
            count,
            slots: 3,
            group: "contract",
            self: { command: SHOAL_BIN, args: [] },
            signal: AbortSignal.timeout(90_000),
            onEvent: (e) => events.push(e),
            ...(env.config ? { config: env.config(dir) } : {}),
          });
          jobs.push(...started);
          return { started, events };
        };

        await t.step("a count below 1 is a RangeError", async () => {
          await assertRejects(() => submit(0, []), RangeError);
        });

        let first: AgentJob[] = [];
        await t.step("submit starts N agents that found a mesh, with S slots and the group", async () => {
          const { started, events } = await submit(env.count, []);
          first = started;
          assertEquals(started.length, env.count);
          assertEquals(new Set(started.map((j) => j.id)).size, env.count, "job IDs are unique");
          for (const j of started) {
            assertEquals(j.rms, name);
            assert(j.host && j.peerId && j.addrs?.length, `job ${j.id} has a host, peer ID and addresses`);
          }
          assertEquals(events.filter((e) => e.type === "agent:started").length, env.count);
          const ids = started.map((j) => j.peerId).sort();
          const view = await waitFor(async () => {
            const v = await viewOf(started[0]!);
            const alive = v.members.filter((m) => m.state === "alive" && ids.includes(m.id));
            return alive.length === ids.length ? v : undefined;
          }, { timeout: 20_000, what: `${env.count} agents alive in one mesh` });
          for (const m of view.members.filter((m) => ids.includes(m.id))) {
            assertEquals(m.slots.total, 3);
            assertEquals(m.group, "contract");
          }
        });

        await t.step("status reports the agents running", async () => {
          const states = await rms.status(first);
          assertEquals(states.map((s) => s.state), first.map(() => "running"));
        });

        let second: AgentJob[] = [];
        await t.step("a second submission joins the existing mesh", async () => {
          ({ started: second } = await submit(1, first.flatMap((j) => j.addrs ?? [])));
          assertEquals(second.length, 1);
          const want = [...first, ...second].map((j) => j.peerId);
          await waitFor(async () => {
            const v = await viewOf(first[0]!);
            return want.every((id) => v.members.some((m) => m.id === id && m.state === "alive"));
          }, { timeout: 20_000, what: "the new agent alive in the first agents' view" });
        });

        await t.step(
          "cancel stops every agent cleanly; status then says exited; again says gone",
          async () => {
            const all = [...first, ...second];
            const results = await rms.cancel(all, { graceMs: 8_000 });
            assertEquals(results.map((r) => r.id), all.map((j) => j.id));
            assertEquals(results.map((r) => r.outcome), all.map(() => "terminated"));
            const states = await rms.status(all);
            assertEquals(states.map((s) => s.state), all.map(() => "exited"));
            const again = await rms.cancel(all, { graceMs: 1_000 });
            assertEquals(again.map((r) => r.outcome), all.map(() => "gone"));
            jobs.length = 0;
          },
        );
      } finally {
        await probe?.stop();
        if (jobs.length) await rms.cancel(jobs, { graceMs: 1_000 }).catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      }
    },
  });
}

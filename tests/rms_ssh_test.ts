/**
 * The ssh plug-in against a real OpenSSH server on 127.0.0.1: the shared contract, `shoal submit --rms
 * ssh` with a DDS host file, staging once per host, site pilot steps, and bad hosts.
 */
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { readSwarmKey, writeSwarmKey } from "../mesh/mod.ts";
import { type AgentFailure, type AgentJob, getRms, SubmitError, type SubmitEvent } from "../rms/mod.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  createHome,
  isRunning,
  processesWith,
  ps,
  SHOAL_BIN,
  sleepers,
  startMesh,
  writeTopology,
} from "./_harness.ts";
import { sshdMissing, startSshd } from "./_sshd.ts";
import { rmsContract } from "./rms_contract.ts";

const missing = sshdMissing();
const ignore = !!missing && !process.env.CI;
if (missing) console.warn(`rms ssh tests: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

const LOOPBACK = "/ip4/127.0.0.1/tcp/0";

rmsContract("ssh", async (dir) => {
  const sshd = await startSshd(join(dir, "sshd"));
  return {
    count: 2,
    config: (d) => ({
      hosts: [{ host: sshd.destination, sshOptions: sshd.options, workDir: join(d, "remote") }],
      listen: LOOPBACK,
      controlPersist: 5,
    }),
    [Symbol.asyncDispose]: () => sshd[Symbol.asyncDispose](),
  };
}, { ignore });

interface SubmitJson {
  started: number;
  slots: number;
  elapsedMs: number;
  agents: { job: string; host: string; id: string }[];
  failures: AgentFailure[];
}

Deno.test({
  name:
    "ssh: `shoal submit -c hosts.cfg` (DDS format) adds agents to the mesh, info lists them, down stops them",
  ignore,
  fn: async () => {
    await using mesh = await startMesh({ agents: 1 });
    await using sshd = await startSshd(join(mesh.home.dir, "sshd"));
    const cfg = join(mesh.home.dir, "hosts.cfg");
    writeFileSync(
      cfg,
      [
        "# two workers on the test sshd: one through an ssh config alias, one with plain options",
        "@bash_begin@",
        `export SHOAL_LISTEN=${LOOPBACK}`,
        "@bash_end@",
        `wn1, shoal-test, -F ${sshd.configFile}, ${join(mesh.home.dir, "wrk1")}, 2`,
        `wn2, ${sshd.destination}, ${sshd.options.join(" ")}, ${join(mesh.home.dir, "wrk2")}, 3`,
        "",
      ].join("\n"),
    );
    // The submit's own deadline comes first, so a failure names what it waited for (seen once under load).
    const sub = await mesh.run(["submit", "--rms", "ssh", "-c", cfg, "--json", "--timeout", "100"], {
      timeoutMs: 150_000,
    });
    assertEquals(sub.code, 0, sub.stderr);
    const out = JSON.parse(sub.stdout) as SubmitJson;
    console.log(`ssh submit of 2 agents (binary copied to 2 work dirs): ${out.elapsedMs} ms to joined`);
    assertEquals(out.started, 2);
    assertEquals(out.slots, 5);
    assertEquals(out.agents.map((a) => a.job.split(":")[0]).sort(), ["wn1", "wn2"]);

    const info = await mesh.run(["info", "--json"]);
    assertEquals(info.code, 0, info.stderr);
    const agents =
      (JSON.parse(info.stdout) as { agents: { id: string; state: string; slots: { total: number } }[] })
        .agents;
    for (const a of out.agents) {
      assert(agents.some((m) => m.id === a.id && m.state === "alive"), `info lists ssh agent ${a.id}`);
    }
    assertEquals(agents.filter((m) => m.state === "alive").length, 3);

    const pids = out.agents.map((a) => Number(a.job.split(":")[1]));
    // The "remote" host is this machine: should `down` fail, do not leave the agents behind.
    await using _cleanup = {
      [Symbol.asyncDispose]: () => {
        for (const p of pids) if (isRunning(p)) process.kill(p, "SIGKILL");
        return Promise.resolve();
      },
    };
    assert(pids.every(isRunning));
    // A topology that needs every slot runs across the local and the ssh agents.
    const topo = writeTopology(mesh.home.dir, "across.xml", sleepers("Across", 6));
    const act = await mesh.run(["topology", "activate", topo]);
    assertEquals(act.code, 0, act.stderr);
    const tasks = await ps(mesh);
    assertEquals(tasks.filter((t) => t.state === "running").length, 6);
    for (const a of out.agents) assert(tasks.some((t) => t.agent === a.id), `tasks run on ssh agent ${a.id}`);
    assertEquals((await mesh.run(["topology", "stop"])).code, 0);
    const down = await mesh.run(["down", "--grace", "5", "--json"]);
    assertEquals(down.code, 0, down.stderr);
    assertEquals((JSON.parse(down.stdout) as { terminated: number }).terminated, 3);
    assert(pids.every((p) => !isRunning(p)), "the remote agents are gone");
  },
});

Deno.test({
  name: "ssh: the binary is copied once per host (checked by hash); site pilot steps run and fail by name",
  ignore,
  fn: async () => {
    await using home = createHome();
    await using sshd = await startSshd(join(home.dir, "sshd"));
    const swarmKeyFile = join(home.dir, "swarm.key");
    await writeSwarmKey(swarmKeyFile);
    await readSwarmKey(swarmKeyFile);
    const rms = getRms("ssh");
    const work = join(home.dir, "remote");
    const jobs: AgentJob[] = [];
    const submit = async (pilot?: unknown, commandHandler?: string) => {
      const events: SubmitEvent[] = [];
      const started = await rms.submit({
        session: { name: "s", id: "s-id", dir: home.dir, swarmKeyFile, bootstrap: [] },
        count: 2,
        slots: 1,
        self: { command: SHOAL_BIN, args: [] },
        ...(commandHandler ? { commandHandler } : {}),
        config: {
          hosts: [{ host: sshd.destination, sshOptions: sshd.options, workDir: work }],
          listen: LOOPBACK,
          controlPersist: 5,
          ...(pilot ? { pilot } : {}),
        },
        onEvent: (e) => events.push(e),
      });
      jobs.push(...started);
      return events;
    };
    try {
      const first = await submit({
        insert: [{ name: "site-mark", run: 'echo "$SHOAL_SLOTS" >"$SHOAL_WORK_DIR/site-mark"' }],
      });
      const staged1 = first.filter((e) => e.type === "binary:staged");
      assertEquals(staged1.length, 1, "two agents on one host stage once");
      assertEquals(staged1[0]?.type === "binary:staged" && staged1[0].copied, true);
      assertEquals(statSync(join(work, "site-mark")).isFile(), true);
      const inode = statSync(join(work, "bin", "shoal")).ino;

      // The agents' command handler is a path on the node, passed on by the pilot.
      const handler = join(home.dir, "site-cmd.sh");
      writeFileSync(handler, "#!/bin/sh\ncat\n", { mode: 0o755 });
      const second = await submit(undefined, handler);
      assert(processesWith(`--command-handler ${handler}`).length >= 2, "the agents got --command-handler");
      const staged2 = second.find((e) => e.type === "binary:staged");
      assertEquals(staged2?.type === "binary:staged" && staged2.copied, false, "the hash matched: no copy");
      assertEquals(statSync(join(work, "bin", "shoal")).ino, inode);

      const err = await assertRejects(
        () =>
          submit({ insert: [{ name: "load-modules", run: "module load gcc/13", before: "stage-binary" }] }),
        SubmitError,
      );
      assertEquals(err.failures.length, 2);
      assertEquals(err.failures[0]?.step, "load-modules");
      assertStringIncludes(err.failures[0]?.reason ?? "", "module");
      assertEquals(err.failures[0]?.host, sshd.destination);
      assertEquals(err.failures[1]?.step, "load-modules");
    } finally {
      await rms.cancel(jobs, { graceMs: 3_000 });
    }
  },
});

/** A TCP server that accepts connections and never says a word (a hung sshd). */
function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        port,
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

/** A port nothing listens on: bound, read back, closed. */
function closedPort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

Deno.test({
  name:
    "ssh: a refused key, an unreachable host and a silent host are reported with host and reason; the rest starts",
  ignore,
  fn: async () => {
    await using home = createHome();
    await using sshd = await startSshd(join(home.dir, "sshd"));
    const silent = await silentServer();
    try {
      const refusedPort = await closedPort();
      const known = sshd.options.filter((o) =>
        o.startsWith("UserKnownHostsFile") || o.startsWith("StrictHost")
      );
      const opts = (
        key: string,
      ) => ["-i", key, "-o", "IdentitiesOnly=yes", ...known.flatMap((o) => ["-o", o])];
      const cfg = join(home.dir, "hosts.json");
      mkdirSync(join(home.dir, "wrk"), { recursive: true });
      writeFileSync(
        cfg,
        JSON.stringify({
          listen: LOOPBACK,
          connectTimeout: 3,
          controlPersist: 5,
          workDir: join(home.dir, "wrk"),
          hosts: [
            { id: "good", host: sshd.destination, sshOptions: sshd.options },
            { id: "refused-key", host: sshd.destination, port: sshd.port, sshOptions: opts(sshd.badKey) },
            { id: "unreachable", host: sshd.destination, port: refusedPort, sshOptions: opts(sshd.key) },
            { id: "silent", host: sshd.destination, port: silent.port, sshOptions: opts(sshd.key) },
          ],
        }),
      );
      const began = Date.now();
      const sub = await home.run(["submit", "--rms", "ssh", "-c", cfg, "--json", "--session", "bad"], {
        timeoutMs: 60_000,
      });
      const elapsed = Date.now() - began;
      assertEquals(sub.code, 1, sub.stderr);
      const out = JSON.parse(sub.stdout) as SubmitJson;
      assertEquals(out.started, 1);
      assertEquals(out.agents[0]?.job.split(":")[0], "good");
      assertEquals(out.failures.length, 3);
      const reasons = out.failures.map((f) => `${f.host} ${f.reason}`).join("\n");
      assertEquals(
        out.failures.map((f) => f.host).sort(),
        ["refused-key", "silent", "unreachable"].map((id) => `${id} (${sshd.destination})`),
      );
      assertStringIncludes(reasons, "Permission denied");
      assertStringIncludes(reasons, "Connection refused");
      assert(/timed out|No answer/.test(reasons), reasons);
      assert(elapsed < 30_000, `reported within the deadline (${elapsed} ms)`);
      const down = await home.run(["down", "--session", "bad", "--grace", "3", "--json"]);
      assertEquals(down.code, 0, down.stderr);
      assertEquals((JSON.parse(down.stdout) as { terminated: number }).terminated, 1);
    } finally {
      await silent.close();
    }
  },
});

/**
 * Staging end to end: real agents (`shoal up`, `shoal agent`), the real `shoal stage put` seeding, chunks
 * pulled over libp2p between the agents' processes, files checked byte for byte on their disks.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  ps,
  SHOAL_BIN,
  spawnAgent,
  startMesh,
  type TestAgent,
  type TestMesh,
  writeTopology,
} from "./_harness.ts";
import { waitFor } from "./_wait.ts";
import { createMeshNode, type MeshNode, readSwarmKey, request } from "../mesh/mod.ts";
import { Bitmap, buildManifest, HAVE_PROTOCOL } from "../stage/mod.ts";
import { HaveResponseSchema } from "../stage/types.ts";

const MiB = 1024 * 1024;

/** A file of `bytes` pseudo-random bytes (distinct per seed, cheap to make). */
function writeData(file: string, bytes: number, seed: number): string {
  const block = new Uint8Array(MiB);
  let x = seed >>> 0;
  for (let i = 0; i < block.length; i += 4) {
    x = (x * 1664525 + 1013904223) >>> 0;
    block[i] = x & 255;
    block[i + 1] = (x >>> 8) & 255;
    block[i + 2] = (x >>> 16) & 255;
    block[i + 3] = x >>> 24;
  }
  const fd = openSync(file, "w");
  for (let off = 0, n = 0; off < bytes; off += MiB, n++) {
    block[0] = n & 255; // every chunk differs
    block[1] = (n >>> 8) & 255;
    writeSync(fd, block, 0, Math.min(MiB, bytes - off));
  }
  closeSync(fd);
  return file;
}

function sha256File(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

interface PutJson {
  name: string;
  manifest: string;
  bytes: number;
  seed: { bytes: number; chunks: number };
  agents: {
    agent: string;
    ok: boolean;
    ms?: number;
    fetched?: number;
    fromSeed?: number;
    fromPeers?: number;
    corrupt?: number;
    from?: Record<string, number>;
    path?: string;
    error?: { name: string; message: string };
  }[];
}

/** A light peer asking agents which pieces they hold, as pullers do. */
async function haveProbe(mesh: TestMesh) {
  const node: MeshNode = await createMeshNode({ swarmKey: await readSwarmKey(mesh.swarmKeyFile) });
  return {
    async have(agent: TestAgent, manifest: string, pieces: number): Promise<Bitmap> {
      const r = await request(node, agent.addrs[0]!, HAVE_PROTOCOL, { manifest }, {
        schema: HaveResponseSchema,
        timeoutMs: 5_000,
      });
      return r.all ? Bitmap.full(pieces) : new Bitmap(pieces, r.bits);
    },
    [Symbol.asyncDispose]: () => node.stop(),
  };
}

/** Starts `shoal stage put args…` in the background. */
function spawnPut(mesh: TestMesh, args: string[]) {
  const child = new Deno.Command(SHOAL_BIN, {
    args: ["stage", "put", ...args, "--json", "--session", mesh.session],
    env: mesh.home.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  return {
    kill: () => child.kill("SIGKILL"),
    async done() {
      const o = await output;
      return {
        code: o.code,
        stdout: new TextDecoder().decode(o.stdout),
        stderr: new TextDecoder().decode(o.stderr),
      };
    },
  };
}

Deno.test("stage: a 64 MiB file staged to 6 agents arrives intact everywhere, most of it from peers", async () => {
  await using mesh = await startMesh({ agents: 6 });
  const file = writeData(join(mesh.home.dir, "data.bin"), 64 * MiB, 1);
  const want = sha256File(file);
  const r = await mesh.run(["stage", "put", file, "--json"], { timeoutMs: 120_000 });
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PutJson;
  assertEquals(out.agents.length, 6);
  for (const a of out.agents) {
    assert(a.ok, JSON.stringify(a));
    assertEquals(sha256File(a.path!), want, `the copy on ${a.agent}`);
    assertEquals(a.fetched, 64 * MiB);
  }
  // A swarm, not one source sending 6 copies: the seed sent each chunk about once, peers the rest.
  assert(out.seed.bytes < 3 * 64 * MiB, `the seed sent ${out.seed.bytes} bytes`);
  const fromPeers = out.agents.reduce((n, a) => n + a.fromPeers!, 0);
  assert(fromPeers > 3 * 64 * MiB, `peers sent ${fromPeers} bytes`);
  const ls = await mesh.run(["stage", "ls", "--json"]);
  const agents =
    (JSON.parse(ls.stdout) as { agents: { staged: { name: string; complete: boolean }[] }[] }).agents;
  assertEquals(
    agents.map((a) => a.staged.map((s) => [s.name, s.complete])),
    Array(6).fill([["data.bin", true]]),
  );
  const rm = await mesh.run(["stage", "rm", "data.bin"]);
  assertEquals([rm.code, rm.stdout.trim()], [0, 'Removed "data.bin" from 6 of 6 agent(s)']);
  for (const a of out.agents) assertEquals(existsSync(a.path!), false);
});

Deno.test("stage: a transfer whose source is killed completes from the peers that already have its chunks", async () => {
  await using mesh = await startMesh({ agents: 4 });
  await using probe = await haveProbe(mesh);
  // The source sends slowly, so the agents hold pieces between them before each holds all; the attempt is
  // repeated (new data) in the rare case all were complete before the probe saw the source's last piece.
  for (let attempt = 0;; attempt++) {
    const file = writeData(join(mesh.home.dir, `slow${attempt}.bin`), 16 * MiB, 10 + attempt);
    const local = await buildManifest(file);
    const pieces = 16;
    const put = spawnPut(mesh, [file, "--rate", "4M"]);
    let incomplete = 0;
    await waitFor(async () => {
      const maps = await Promise.all(mesh.agents.map((a) => probe.have(a, local.id, pieces)));
      const union = new Bitmap(pieces);
      maps.forEach((m) => union.setFrom(m, 0));
      incomplete = maps.filter((m) => !m.full).length;
      return union.full;
    }, { timeout: 30_000, interval: 20, what: "every piece to be on some agent" });
    put.kill();
    const killed = await put.done();
    assert(killed.code !== 0, "the source was killed before it finished");
    if (incomplete === 0) {
      assert(attempt < 2, "every agent finished before the source's last piece was seen, three times");
      continue;
    }
    await waitFor(async () => {
      const maps = await Promise.all(mesh.agents.map((a) => probe.have(a, local.id, pieces)));
      return maps.every((m) => m.full);
    }, { timeout: 30_000, what: `the ${incomplete} incomplete agent(s) to finish without the source` });
    const want = sha256File(file);
    for (const a of mesh.agents) {
      const staged = join(a.dataDir, "stage", `slow${attempt}.bin`);
      await waitFor(() => existsSync(staged), { timeout: 5_000, what: `${staged} linked` });
      assertEquals(sha256File(staged), want);
    }
    break;
  }
});

Deno.test("stage: a corrupt chunk from a peer is detected and fetched elsewhere", async () => {
  await using mesh = await startMesh({ agents: 2 });
  const [a, b] = [mesh.agents[0]!, mesh.agents[1]!];
  const file = writeData(join(mesh.home.dir, "c.bin"), 8 * MiB + 123, 3);
  const first = await mesh.run(["stage", "put", file, "--to", a.id, "--json"]);
  assertEquals(first.code, 0, first.stderr);
  // Rot one byte of the 4th chunk in a's cache (the file its peers are served from).
  const onA = (JSON.parse(first.stdout) as PutJson).agents[0]!.path!;
  const fd = openSync(onA, "r+");
  writeSync(fd, new Uint8Array([0x5a ^ readFileSync(onA)[3 * MiB + 7]!]), 0, 1, 3 * MiB + 7);
  closeSync(fd);
  // b pulls from a (agents before the seed), finds chunk 3 corrupt and gets it from the seed instead.
  const second = await mesh.run(["stage", "put", file, "--to", b.id, "--json"]);
  assertEquals(second.code, 0, second.stderr);
  const got = (JSON.parse(second.stdout) as PutJson).agents[0]!;
  assertEquals(got.corrupt, 1);
  assertEquals(got.from![a.id], 8 * MiB + 123 - MiB, JSON.stringify(got.from));
  assertEquals(got.fromSeed, MiB);
  assertEquals(sha256File(got.path!), sha256File(file));
});

Deno.test("stage: an agent killed mid-transfer resumes where it stopped: the next put fetches only the rest", async () => {
  await using mesh = await startMesh({ agents: 1 });
  await using probe = await haveProbe(mesh);
  const fg = spawnAgent(mesh.home, "fg", ["--slots", "1", "--quiet"]);
  const agent = await fg.ready();
  await waitFor(async () => (await mesh.viewOf(mesh.agents[0]!)).members.some((m) => m.id === agent.id), {
    what: "the foreground agent in the view",
  });
  const file = writeData(join(mesh.home.dir, "r.bin"), 12 * MiB, 5);
  const local = await buildManifest(file);
  const put = spawnPut(mesh, [file, "--to", agent.id, "--rate", "3M"]);
  const held = await waitFor(async () => {
    const n = (await probe.have(agent, local.id, 12)).count;
    return n >= 4 ? n : 0;
  }, { timeout: 30_000, interval: 20, what: "4 chunks on the agent" });
  fg.kill("SIGKILL");
  await fg.exited;
  const cut = await put.done();
  assertEquals(cut.code, 1, "the put reports the agent it lost");
  await using again = spawnAgent(mesh.home, "fg", ["--slots", "1", "--quiet"]);
  await again.ready();
  await waitFor(
    async () =>
      (await mesh.viewOf(mesh.agents[0]!)).members.some((m) => m.id === agent.id && m.state === "alive"),
    {
      what: "the restarted agent alive in the view",
    },
  );
  const r = await mesh.run(["stage", "put", file, "--to", agent.id, "--json"], { timeoutMs: 60_000 });
  assertEquals(r.code, 0, r.stderr);
  const out = (JSON.parse(r.stdout) as PutJson).agents[0]!;
  assert(out.fetched! <= (12 - held) * MiB, `fetched ${out.fetched} after holding ${held} chunks`);
  assertEquals(sha256File(out.path!), sha256File(file));
});

Deno.test("stage: a put interrupted while the agents still pull is resumed by the next put at once, which sends only the rest", async () => {
  await using mesh = await startMesh({ agents: 1 });
  await using probe = await haveProbe(mesh);
  const agent = mesh.agents[0]!;
  const file = writeData(join(mesh.home.dir, "i.bin"), 12 * MiB, 9);
  const local = await buildManifest(file);
  const put = spawnPut(mesh, [file, "--rate", "3M"]);
  const held = await waitFor(async () => {
    const n = (await probe.have(agent, local.id, 12)).count;
    return n >= 4 && n < 12 ? n : 0;
  }, { timeout: 30_000, interval: 20, what: "4 chunks on the agent" });
  put.kill();
  assert((await put.done()).code !== 0, "the first put was killed");
  // The agent's pull of it still runs, its seed gone: the new put's seed joins it.
  const r = await mesh.run(["stage", "put", file, "--json"], { timeoutMs: 60_000 });
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PutJson;
  assert(out.seed.bytes <= (12 - held) * MiB, `the second seed sent ${out.seed.bytes} after ${held} chunks`);
  assertEquals(sha256File(out.agents[0]!.path!), sha256File(file));
});

Deno.test("stage: a task uses the staged file by name through $SHOAL_STAGE", async () => {
  await using mesh = await startMesh({ agents: 2 });
  const file = writeData(join(mesh.home.dir, "calib.bin"), 3 * MiB + 5, 7);
  const put = await mesh.run(["stage", "put", file, "--name", "calib"]);
  assertEquals(put.code, 0, put.stderr);
  const hash = sha256File(file);
  const topo = writeTopology(
    mesh.home.dir,
    "uses.xml",
    `<topology name="uses">
  <decltask name="Check"><exe reachable="true">sha256sum $SHOAL_STAGE/calib | grep -q ${hash}</exe></decltask>
  <decltask name="Wrong"><exe reachable="true">sha256sum $SHOAL_STAGE/calib | grep -q ${
      "0".repeat(64)
    }</exe></decltask>
  <main name="main"><task>Check</task><task>Wrong</task></main>
</topology>`,
  );
  const act = await mesh.run(["topology", "activate", topo]);
  assertEquals(act.code, 0, act.stderr);
  const tasks = await waitFor(async () => {
    const t = await ps(mesh);
    return t.length === 2 && t.every((x) => x.state === "exited" || x.state === "failed") ? t : undefined;
  }, { timeout: 20_000, what: "both tasks to exit" });
  const byName = Object.fromEntries(tasks.map((t) => [t.path, t.exitCode]));
  assertEquals(byName, { "main/Check_0": 0, "main/Wrong_0": 1 });
  await mesh.run(["topology", "stop"]);
});

Deno.test("stage: a reachable=false executable and a large asset travel by staging, and the lease only refers to them", async () => {
  await using mesh = await startMesh({ agents: 3, slots: 2 });
  const exe = join(mesh.home.dir, "tool");
  // The executable checks the asset beside it in its sandbox.
  const body = `#!/bin/sh\n[ "$(wc -c < bigcfg)" -eq 102400 ] || exit 3\n`;
  Deno.writeTextFileSync(exe, body + "#" + "y".repeat(2 * MiB - body.length - 2) + "\n");
  Deno.chmodSync(exe, 0o755);
  const topo = writeTopology(
    mesh.home.dir,
    "ship.xml",
    `<topology name="ship">
  <asset name="bigcfg" type="inline" visibility="task" value="${"z".repeat(100 * 1024)}"/>
  <decltask name="Tool"><exe reachable="false">${exe}</exe><assets><name>bigcfg</name></assets></decltask>
  <main name="main"><group name="g" n="6"><task>Tool</task></group></main>
</topology>`,
  );
  const act = await mesh.run(["topology", "activate", topo]);
  assertEquals(act.code, 0, act.stderr);
  const tasks = await waitFor(async () => {
    const t = await ps(mesh);
    return t.length === 6 && t.every((x) => x.state === "exited") ? t : undefined;
  }, { timeout: 30_000, what: "6 tasks to run and exit" });
  assertEquals(tasks.map((t) => t.exitCode), Array(6).fill(0));
  const ls = JSON.parse((await mesh.run(["stage", "ls", "--json"])).stdout) as {
    agents: { agent: string; staged: { name: string; complete: boolean; bytes: number }[] }[];
  };
  const withTasks = new Set(tasks.map((t) => t.agent));
  for (const a of ls.agents) {
    const shipped = a.staged.filter((s) => s.name.startsWith("shipped-"));
    assertEquals(
      shipped.map((s) => [s.complete, s.bytes]).sort((x, y) => Number(x[1]) - Number(y[1])),
      withTasks.has(a.agent) ? [[true, 100 * 1024], [true, 2 * MiB]] : [],
      `staged on ${a.agent}`,
    );
  }
  // Each sandbox's files are hard links to the staged copies in the agent's content cache.
  for (const agent of mesh.agents.filter((a) => withTasks.has(a.id))) {
    const cache = join(agent.dataDir, "cache");
    const inode = (mode: string) =>
      Deno.statSync(join(cache, [...Deno.readDirSync(cache)].find((e) => e.name.endsWith(mode))!.name)).ino;
    for (const d of Deno.readDirSync(join(agent.dataDir, "tasks"))) {
      for (const t of Deno.readDirSync(join(agent.dataDir, "tasks", d.name))) {
        const sandbox = join(agent.dataDir, "tasks", d.name, t.name);
        assertEquals(Deno.statSync(join(sandbox, "tool")).ino, inode(".555"), sandbox);
        const asset = Deno.statSync(join(sandbox, "bigcfg"));
        assertEquals(asset.ino, inode(".444"), sandbox);
        assertEquals(asset.mode! & 0o222, 0, "a shared asset is read-only");
      }
    }
  }
  await mesh.run(["topology", "stop"]);
});

Deno.test("stage: bad input gets one clear line and a usage exit code; nothing is staged", async () => {
  await using mesh = await startMesh({ agents: 1 });
  const missing = await mesh.run(["stage", "put", join(mesh.home.dir, "nope.bin")]);
  assertEquals(missing.code, 2);
  assertEquals(
    missing.stderr.trim(),
    `shoal: Cannot stage "${join(mesh.home.dir, "nope.bin")}": it does not exist or cannot be read`,
  );
  const file = writeData(join(mesh.home.dir, "ok.bin"), 1000, 1);
  const badName = await mesh.run(["stage", "put", file, "--name", "../x"]);
  assertEquals(badName.code, 2);
  assert(badName.stderr.includes(`the name "../x" is not a plain file name`), badName.stderr);
  const nobody = await mesh.run(["stage", "put", file, "--to", "no-such-host"]);
  assertEquals(nobody.code, 1);
  assert(
    nobody.stderr.includes(`No alive agent's peer ID or host matches --to "no-such-host"`),
    nobody.stderr,
  );
  const rm = await mesh.run(["stage", "rm", "ok.bin"]);
  assertEquals(rm.code, 1);
  const ls = JSON.parse((await mesh.run(["stage", "ls", "--json"])).stdout) as {
    agents: { staged: unknown[] }[];
  };
  assertEquals(ls.agents.map((a) => a.staged), [[]]);
});

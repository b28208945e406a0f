/**
 * Agent health with a real agent on a small tmpfs data dir: filled past `--min-free-disk`, it refuses
 * leases and says why (`shoal info`, `shoal pool`, the monitor); emptied again, it takes leases.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { joinArgs, spawnAgent, startMesh, writeTopology } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

/** Mounts a 600 MB tmpfs at `dir`; undefined (with the reason) when this machine will not let us. */
function mountTmpfs(dir: string): string | undefined {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=600m", "tmpfs", dir], { encoding: "utf8" });
  return r.status === 0 ? undefined : `mount -t tmpfs failed: ${(r.stderr || r.error?.message || "").trim()}`;
}

Deno.test("pool health: an agent whose data disk is under --min-free-disk refuses leases with the reason, then recovers", async (t) => {
  await using mesh = await startMesh({ agents: 1, slots: 1 });
  const dataDir = join(mesh.home.dir, "fg", "small");
  const cannot = mountTmpfs(dataDir);
  if (cannot) {
    console.warn(`pool health test skipped: ${cannot}`);
    if (process.env.CI) throw new Error(cannot);
    return;
  }
  await using _unmount = {
    [Symbol.asyncDispose]: () => {
      spawnSync("umount", ["-l", dataDir]);
      return Promise.resolve();
    },
  };
  const ballast = join(dataDir, "ballast");
  const monitor = new Deno.Command((await import("./_harness.ts")).SHOAL_BIN, {
    args: ["monitor", "--json", "--session", mesh.session],
    env: mesh.home.env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let events = "";
  const reading = (async () => {
    for await (const c of monitor.stdout.pipeThrough(new TextDecoderStream())) events += c;
  })();
  await using _monitor = {
    [Symbol.asyncDispose]: async () => {
      monitor.kill("SIGTERM");
      await monitor.status;
      await reading.catch(() => {});
    },
  };
  await using agent = spawnAgent(mesh.home, "small", [
    ...joinArgs(mesh),
    "--slots",
    "2",
    "--quiet",
  ]);
  const small = await agent.ready();
  const info = async () => {
    const r = await mesh.run(["info", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).agents as { id: string; slots: { free: number }; unhealthy?: string }[];
  };
  await t.step("healthy at first, it offers its slots", async () => {
    await waitFor(async () => (await info()).find((a) => a.id === small.id && a.slots.free === 2), {
      timeout: 20_000,
      what: "the small agent to join",
    });
    assertEquals((await info()).find((a) => a.id === small.id)?.unhealthy, undefined);
  });
  // 600 MB disk (629 MB: tmpfs counts MiB), 150 MB of it taken: about 480 MB free, under the 500 MB default.
  writeFileSync(ballast, new Uint8Array(150_000_000));
  await t.step("filled, it announces no free slots and the reason", async () => {
    const row = await waitFor(async () => (await info()).find((a) => a.id === small.id && a.unhealthy), {
      timeout: 20_000,
      what: "the small agent to report its disk",
    });
    assertStringIncludes(row.unhealthy!, "under --min-free-disk 500 MB");
    assertEquals(row.slots.free, 0);
    const human = await mesh.run(["info"]);
    assertStringIncludes(human.stdout, "takes no leases: data disk has");
    const p = await mesh.run(["pool"]);
    assertStringIncludes(p.stdout, "1 unhealthy");
  });
  const topo = writeTopology(
    mesh.home.dir,
    "three.xml",
    `<topology name="three">
  <decltask name="S"><exe reachable="true">sleep 600</exe></decltask>
  <main name="main"><group name="g" n="3"><task>S</task></group></main>
</topology>`,
  );
  await t.step("a topology needing its slots does not start: nothing of it runs", async () => {
    const r = await mesh.run(["topology", "activate", topo]);
    assertEquals(r.code, 1, r.stdout);
    assertStringIncludes(r.stderr, "Cannot place 3 task(s)");
    const ps = await mesh.run(["ps", "--json"]);
    assertEquals(JSON.parse(ps.stdout).tasks.length, 0);
  });
  await t.step("the monitor saw why", async () => {
    await waitFor(() => events.includes('"agent:unhealthy"'), { timeout: 10_000, what: "the event" });
    assertStringIncludes(events, "under --min-free-disk");
  });
  await t.step("with the disk emptied it takes leases again", async () => {
    rmSync(ballast);
    await waitFor(async () => {
      const row = (await info()).find((a) => a.id === small.id);
      return row && !row.unhealthy && row.slots.free === 2;
    }, { timeout: 20_000, what: "the small agent to recover" });
    const r = await mesh.run(["topology", "activate", topo, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout).started, 3);
    await waitFor(() => events.includes('"agent:healthy"'), { timeout: 10_000, what: "the recovery event" });
    const stop = await mesh.run(["topology", "stop", "--grace", "1"]);
    assertEquals(stop.code, 0, stop.stderr);
  });
  assert(agent.stderr() === "", agent.stderr());
});

Deno.test("pool health: `shoal submit --min-free-disk` hands the floor to the agents it starts; an agent's own flag wins", async () => {
  await using mesh = await startMesh({ agents: 1, slots: 1 });
  const info = async () => {
    const r = await mesh.run(["info", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).agents as { id: string; slots: { free: number }; unhealthy?: string }[];
  };
  // No disk here has 1000 TB free: the agent the localhost plug-in starts takes no leases, and says why.
  const sub = await mesh.run([
    "submit",
    "--rms",
    "localhost",
    "--slots",
    "2",
    "--min-free-disk",
    "1000TB",
    "--json",
  ]);
  assertEquals(sub.code, 0, sub.stderr);
  const id = (JSON.parse(sub.stdout) as { agents: { id: string }[] }).agents[0]!.id;
  const row = await waitFor(async () => (await info()).find((a) => a.id === id && a.unhealthy), {
    timeout: 20_000,
    what: "the submitted agent to report its floor",
  });
  assertStringIncludes(row.unhealthy!, "under --min-free-disk 1000 TB");
  assertEquals(row.slots.free, 0);
  // The same label on an agent started with its own --min-free-disk 0: the flag wins, it takes leases.
  await using agent = spawnAgent(mesh.home, "own", [
    ...joinArgs(mesh),
    "--slots",
    "2",
    "--label",
    "shoal.min-free-disk=1000000000000000",
    "--min-free-disk",
    "0",
    "--quiet",
  ]);
  const own = await agent.ready();
  const mine = await waitFor(async () => (await info()).find((a) => a.id === own.id && a.slots.free === 2), {
    timeout: 20_000,
    what: "the agent with its own flag to offer its slots",
  });
  assertEquals(mine.unhealthy, undefined);
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "../tests/_assert.ts";
import { createLogger } from "../agent/mod.ts";
import { createMeshNode, createSwarmKey, type MeshNode } from "../mesh/mod.ts";
import { buildManifest, stageList, stagePut, startStageService } from "./mod.ts";

const LISTEN = ["/ip4/127.0.0.1/tcp/0"];

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function meshOf(n: number): Promise<MeshNode[] & AsyncDisposable> {
  const swarmKey = createSwarmKey();
  const nodes = await Promise.all(
    Array.from({ length: n }, () => createMeshNode({ swarmKey, listen: LISTEN })),
  );
  for (const a of nodes) for (const b of nodes) if (a !== b) await a.dial(b.addresses()[0]!);
  return Object.assign(nodes, {
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((x) => x.stop()));
    },
  });
}

Deno.test("stage service: a tree reaches two agents from a seed, byte for byte, and a second put fetches nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-stage-"));
  try {
    const src = join(dir, "src");
    await mkdir(join(src, "sub", "empty"), { recursive: true });
    writeFileSync(join(src, "big.bin"), bytes(5 * 256 * 1024 + 17, 1));
    writeFileSync(join(src, "sub", "copy.bin"), bytes(5 * 256 * 1024 + 17, 1));
    writeFileSync(join(src, "sub", "small.txt"), "hello\n");
    writeFileSync(join(src, "zero"), "");
    await using nodes = await meshOf(3);
    const [seedNode, a, b] = [nodes[0]!, nodes[1]!, nodes[2]!];
    const log = createLogger({ stderr: false });
    await using sa = await startStageService({ node: a, workDir: join(dir, "a"), host: "a", log });
    await using sb = await startStageService({ node: b, workDir: join(dir, "b"), host: "b", log });
    const local = await buildManifest(src, { name: "tree", chunkSize: 256 * 1024 });
    assertEquals(local.manifest.contents.length, 3, "identical files share one content");
    const targets = [{ id: a.peerId, host: "a" }, { id: b.peerId, host: "b" }];
    const put = await stagePut(seedNode, local, { targets });
    assertEquals(put.agents.map((r) => r.ok), [true, true], JSON.stringify(put.agents));
    for (const s of [sa, sb]) {
      for (const f of ["big.bin", "sub/copy.bin", "sub/small.txt", "zero"]) {
        assertEquals(await readFile(join(s.dir, "tree", f)), readFileSync(join(src, f)), f);
      }
    }
    const fetched = put.agents.map((r) => r.ok ? r.result.fetched : -1);
    assertEquals(fetched[0]! + fetched[1]!, 2 * local.bytes);
    const again = await stagePut(seedNode, local, { targets });
    assertEquals(again.agents.map((r) => r.ok && r.result.fetched), [0, 0]);
    const ls = await stageList(seedNode, targets);
    assertEquals(ls.answers.map((x) => x.staged.map((s) => [s.name, s.complete, s.files])), [
      [["tree", true, 4]],
      [["tree", true, 4]],
    ]);
    const rm = await stageList(seedNode, [targets[0]!], { remove: "tree" });
    assert(rm.answers[0]!.removed);
    assertEquals(rm.answers[0]!.staged, []);
    assertEquals(rm.answers[0]!.cacheBytes, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("stage service: past its cache limit an agent evicts the least recently used name, never one a running task names, and refuses what cannot fit", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-stage-"));
  try {
    await using nodes = await meshOf(2);
    const [seedNode, a] = [nodes[0]!, nodes[1]!];
    const log = createLogger({ stderr: false });
    const size = 600 * 1024;
    let tick = 0;
    await using sa = await startStageService({
      node: a,
      workDir: join(dir, "a"),
      host: "a",
      log,
      cacheMaxBytes: Math.round(2.5 * size),
      now: () => ++tick, // every staging and use at a later time than the one before
    });
    const targets = [{ id: a.peerId, host: "a" }];
    const put = async (name: string, seed: number, n = size) => {
      writeFileSync(join(dir, name), bytes(n, seed));
      const local = await buildManifest(join(dir, name), { chunkSize: 256 * 1024 });
      return (await stagePut(seedNode, local, { targets })).agents[0]!;
    };
    const first = await put("one", 1);
    assert(first.ok, JSON.stringify(first));
    assert((await put("two", 2)).ok);
    assert(sa.resolve("one"), "a task uses one: it becomes the most recently used");
    assert((await put("three", 3)).ok);
    assertEquals((await sa.list()).map((s) => s.name), ["one", "three"]);
    assertEquals(sa.cacheBytes(), 2 * size);
    const tooBig = await put("huge", 4, 3 * size);
    assertEquals(tooBig.ok ? "" : tooBig.error.name, "StageCacheFullError");
    assertEquals(
      (await sa.list()).map((s) => s.name),
      ["one", "three"],
      "nothing is evicted for what cannot fit",
    );
    // A running task refers to "one" (the least recently used now): "three" goes instead, until it ends.
    sa.use("t\0main/T_0", ["one"]);
    assert(sa.resolve("three"), "three becomes the most recently used");
    assert((await put("four", 5)).ok);
    assertEquals((await sa.list()).map((s) => s.name), ["four", "one"], "a name a task holds stays");
    sa.release("t\0main/T_0");
    assert(sa.resolve("four"));
    assert((await put("five", 6)).ok);
    assertEquals((await sa.list()).map((s) => s.name), ["five", "four"], "released, it is evicted again");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

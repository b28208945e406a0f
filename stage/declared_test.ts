import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../tests/_assert.ts";
import { createLogger } from "../agent/mod.ts";
import { createMeshNode, createSwarmKey } from "../mesh/mod.ts";
import {
  buildManifest,
  createStageFetcher,
  locateStaged,
  stagedAsset,
  stagedNames,
  stagePut,
  startStageService,
  UnheldStageError,
} from "./mod.ts";

Deno.test("stage: the staged names a command line refers to are found, in both spellings", () => {
  assertEquals(stagedNames('sha256sum $SHOAL_STAGE/calib.root "${SHOAL_STAGE}/run42/x" $SHOAL_STAGE'), [
    "calib.root",
    "run42",
  ]);
});

Deno.test("stage: an asset refers to a staged name only when its whole value is $SHOAL_STAGE/<name>", () => {
  assertEquals(stagedAsset("$SHOAL_STAGE/calib"), "calib");
  assertEquals(stagedAsset(" ${SHOAL_STAGE}/run42/ "), "run42");
  assertEquals(stagedAsset("$SHOAL_STAGE/run42/x"), undefined);
  assertEquals(stagedAsset("see $SHOAL_STAGE/calib"), undefined);
  assertEquals(stagedAsset("$SHOAL_STAGE/.hidden"), undefined);
});

Deno.test("stage fetcher: a name held by one agent is located and pulled by another once, however many ask; an unlocated one is refused by name", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-declared-"));
  const swarmKey = createSwarmKey();
  const nodes = await Promise.all(
    [0, 1, 2].map(() => createMeshNode({ swarmKey, listen: ["/ip4/127.0.0.1/tcp/0"] })),
  );
  try {
    for (const x of nodes) for (const y of nodes) if (x !== y) await x.dial(y.addresses()[0]!);
    const [tool, a, b] = [nodes[0]!, nodes[1]!, nodes[2]!];
    const log = createLogger({ stderr: false });
    await using sa = await startStageService({ node: a, workDir: join(dir, "a"), host: "a", log });
    await using sb = await startStageService({ node: b, workDir: join(dir, "b"), host: "b", log });
    const content = new Uint8Array(600 * 1024).map((_, i) => (i * 7919) & 255);
    writeFileSync(join(dir, "calib.bin"), content);
    const local = await buildManifest(join(dir, "calib.bin"), { name: "calib", chunkSize: 64 * 1024 });
    const put = await stagePut(tool, local, { targets: [{ id: a.peerId, host: "a" }] });
    assert(put.agents[0]!.ok, JSON.stringify(put.agents));
    const found = await locateStaged(tool, [{ id: a.peerId, host: "a" }, { id: b.peerId, host: "b" }], [
      "calib",
      "nope",
    ]);
    assertEquals(found.unheld, ["nope"]);
    const source = found.sources.get("calib")!;
    assertEquals([source.manifest, source.holders], [local.id, [a.peerId]]);
    const fetcher = createStageFetcher({ node: b, stage: sb });
    assertEquals(fetcher.present("calib", source), undefined);
    const err = await assertRejects(() => fetcher.fetch("calib", undefined), UnheldStageError);
    assertEquals(err.stageName, "calib");
    const [p1, p2] = [fetcher.fetch("calib", source), fetcher.fetch("calib", source)];
    assertEquals(p1, p2, "one pull for both");
    const path = await p1;
    assertEquals(path, join(sb.dir, "calib"));
    assertEquals(new Uint8Array(readFileSync(path)), content);
    assertEquals(fetcher.present("calib", source), path);
    assertEquals(sa.held("calib"), { manifest: local.id, complete: true });
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});

import { assertEquals, assertOk as assert, assertRejects, testdataFile } from "./_testdata.ts";
import { TopologyFileError, TopologyValidationError } from "./errors.ts";
import { loadTopology } from "./load.ts";

Deno.test("load: reads a file and names it in issues", async () => {
  const topo = await loadTopology(testdataFile("chorus.xml"), { vars: { voices: "2" } });
  assertEquals(topo.main.groups[0]?.n, 2);
  const err = await assertRejects(
    () => loadTopology(testdataFile("legacy_ports.xml")),
    TopologyValidationError,
  );
  assert(err.file.endsWith("topology/testdata/legacy_ports.xml"));
});

Deno.test("load: refuses an oversized file before reading it, and reports missing ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.xml`;
    using f = await Deno.open(path, { create: true, write: true });
    await f.truncate(200 * 1024 * 1024);
    const err = await assertRejects(() => loadTopology(path), TopologyValidationError);
    assert(err.issues[0]?.message.includes("more than the limit"));
    await assertRejects(() => loadTopology(`${dir}/none.xml`), TopologyFileError);
    await assertRejects(() => loadTopology(dir), TopologyFileError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

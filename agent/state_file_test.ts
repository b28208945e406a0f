import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals } from "../tests/_assert.ts";
import { type AgentStateFile, readStateFile, writeStateFile } from "./state_file.ts";

Deno.test("state file: writes at once (start and join) all succeed, in call order, and leave no temporary file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-state-"));
  try {
    const state = (joined: boolean): AgentStateFile => ({
      peerId: "p",
      pid: 1,
      addrs: [],
      startedAt: 0,
      joined,
      status: "running",
      version: "0",
    });
    await Promise.all([writeStateFile(dir, state(false)), writeStateFile(dir, state(true))]);
    assertEquals((await readStateFile(dir))?.joined, true);
    assertEquals(readdirSync(dir), ["agent.json"]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

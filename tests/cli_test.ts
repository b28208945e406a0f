/**
 * The `shoal` command as people and tools meet it: help, version, exit codes, sessions, bad input.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import {
  createHome,
  isRunning,
  processesWith,
  runShoal,
  SHOAL_BIN,
  spawnAgent,
  startMesh,
} from "./_harness.ts";
import { SHOAL_VERSION } from "../mesh/mod.ts";

/** shoal's own DDS-format topologies (DDS's files are in `dds_conformance_test.ts`). */
const TESTDATA = new URL("../topology/testdata/", import.meta.url).pathname;

/** Every command and subcommand, read from the help itself. */
async function commandPaths(prefix: string[] = []): Promise<string[][]> {
  const help = await runShoal([...prefix, "--help"]);
  const section = help.stdout.split("Commands:\n")[1]?.split("\n\n")[0] ?? "";
  const names = [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!).filter((n) => n !== "help");
  const out: string[][] = [];
  for (const name of names) out.push([...prefix, name], ...await commandPaths([...prefix, name]));
  return out;
}

Deno.test("cli: every command has --help with examples", async () => {
  const paths = await commandPaths();
  assert(paths.length >= 8, `found only ${paths.length} commands`);
  for (const path of paths) {
    const r = await runShoal([...path, "--help"]);
    assertEquals(r.code, 0, `shoal ${path.join(" ")} --help`);
    assertStringIncludes(r.stdout, "Examples:", `shoal ${path.join(" ")} --help has examples`);
  }
});

Deno.test("cli: --version prints the version", async () => {
  const r = await runShoal(["--version"]);
  assertEquals([r.code, r.stdout.trim()], [0, SHOAL_VERSION]);
});

Deno.test("cli: an unknown flag exits 2 with one clear line", async () => {
  const r = await runShoal(["up", "--bogus"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "unknown option '--bogus'");
  assertStringIncludes(r.stderr, "shoal up --help");
});

Deno.test("cli: a missing session exits 3 and says how to start it", async () => {
  await using home = createHome();
  const r = await home.run(["info", "--session", "nope"]);
  assertEquals(r.code, 3);
  assertStringIncludes(r.stderr, 'Session "nope" does not exist');
  assertStringIncludes(r.stderr, "shoal up --session nope");
  assert(!r.stderr.includes("    at "), "no stack trace without --debug");
});

Deno.test("cli: a corrupt swarm key is named with what to do", async () => {
  await using mesh = await startMesh({ agents: 1 });
  const original = readFileSync(mesh.swarmKeyFile);
  writeFileSync(mesh.swarmKeyFile, "garbage\n");
  try {
    const r = await mesh.run(["info"]);
    assertEquals(r.code, 3);
    assertStringIncludes(r.stderr, mesh.swarmKeyFile);
  } finally {
    writeFileSync(mesh.swarmKeyFile, original);
  }
});

Deno.test("cli: an agent on a busy port says so and exits non-zero", async () => {
  await using home = createHome();
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  try {
    const key = join(home.dir, "swarm.key");
    const { createSwarmKey } = await import("../mesh/mod.ts");
    writeFileSync(key, createSwarmKey());
    await using agent = spawnAgent(home, "busy", [
      "--swarm-key",
      key,
      "--listen",
      `/ip4/127.0.0.1/tcp/${port}`,
    ]);
    const code = await agent.exited;
    assert(code !== 0);
    assertStringIncludes(agent.stderr(), "already in use");
  } finally {
    server.close();
  }
});

Deno.test("cli: two sessions run side by side and down leaves nothing running", async () => {
  await using home = createHome();
  await using a = await startMesh({ agents: 2, session: "a", home });
  await using b = await startMesh({ agents: 1, session: "b", home });
  const infoA = JSON.parse((await a.run(["info", "--json"])).stdout) as { agents: { id: string }[] };
  const infoB = JSON.parse((await b.run(["info", "--json"])).stdout) as { agents: { id: string }[] };
  assertEquals(infoA.agents.length, 2);
  assertEquals(infoB.agents.length, 1);
  const down = await a.run(["down", "--json"]);
  assertEquals(down.code, 0);
  assertEquals((JSON.parse(down.stdout) as { stopped: number }).stopped, 2);
  for (const agent of a.agents) assert(!isRunning(agent.pid), `agent ${agent.pid} still runs`);
  assert(b.agents.every((agent) => isRunning(agent.pid)), "session b is untouched");
  const again = await a.run(["info"]);
  assertEquals(again.code, 3);
});

Deno.test("cli: the binary runs from a clean directory without Deno, Bun or node_modules", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-clean-"));
  try {
    const bin = join(dir, "shoal");
    copyFileSync(SHOAL_BIN, bin);
    Deno.chmodSync(bin, 0o755);
    const env = { PATH: "/usr/bin:/bin", HOME: dir, SHOAL_HOME: join(dir, "home") };
    const run = (args: string[]) => new Deno.Command(bin, { args, env, clearEnv: true, cwd: dir }).output();
    const version = await run(["--version"]);
    assertEquals(new TextDecoder().decode(version.stdout).trim(), SHOAL_VERSION);
    const up = await run(["up", "--agents", "2", "--json"]);
    assertEquals(up.code, 0, new TextDecoder().decode(up.stderr));
    const agents = (JSON.parse(new TextDecoder().decode(up.stdout)) as { agents: unknown[] }).agents;
    assertEquals(agents.length, 2);
    assertEquals((await run(["down"])).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("cli: topology validate exits 0 for valid files and 1 listing every error", async () => {
  const ok = await runShoal(["topology", "validate", `${TESTDATA}ripple.xml`, `${TESTDATA}chorus.xml`]);
  assertEquals(ok.code, 0, ok.stderr);
  const bad = await runShoal(["topology", "validate", "--json", `${TESTDATA}legacy_ports.xml`]);
  assertEquals(bad.code, 1);
  const issues = (JSON.parse(bad.stdout) as { issues: { line: number; column: number; name: string }[] })
    .issues;
  assertEquals(issues.map((i) => `${i.line}:${i.column}:${i.name}`), [
    "2:1:decltask",
    "5:3:task",
    "9:3:collection",
    "13:3:group",
    "17:3:n",
    "17:3:name",
    "18:5:minRequired",
  ]);
});

Deno.test("cli: topology view --json and diff --json give runtime paths", async () => {
  const view = await runShoal(["topology", "view", "--json", `${TESTDATA}chorus.xml`, "--var", "voices=3"]);
  assertEquals(view.code, 0, view.stderr);
  const tasks = (JSON.parse(view.stdout) as { tasks: { path: string }[] }).tasks.map((t) => t.path);
  assertEquals(tasks, [
    "main/Conductor_0",
    "main/Voices/Singer_0",
    "main/Voices/Singer_1",
    "main/Voices/Singer_2",
  ]);
  const same = await runShoal([
    "topology",
    "diff",
    "--json",
    `${TESTDATA}ripple.xml`,
    `${TESTDATA}ripple.xml`,
  ]);
  assertEquals(JSON.parse(same.stdout), {
    removedTasks: [],
    addedTasks: [],
    removedCollections: [],
    addedCollections: [],
  });
});

Deno.test("cli: a large --json output reaches a pipe whole (3,000 tasks, well over a pipe buffer)", async () => {
  const view = await runShoal([
    "topology",
    "view",
    "--json",
    `${TESTDATA}fleet.xml`,
    "--var",
    "perRack=1000",
  ]);
  assertEquals(view.code, 0, view.stderr);
  assert(view.stdout.length > 256 * 1024, `only ${view.stdout.length} bytes`);
  assertEquals((JSON.parse(view.stdout) as { tasks: unknown[] }).tasks.length, 3000);
});

Deno.test("cli: info --wait-slots returns once the slots are there, or exits 5 at its deadline", async () => {
  await using mesh = await startMesh({ agents: 2, slots: 2 });
  assertEquals((await mesh.run(["info", "--wait-slots", "4"])).code, 0);
  const late = await mesh.run(["info", "--wait-slots", "99", "--timeout", "1"]);
  assertEquals(late.code, 5);
  assertStringIncludes(late.stderr, "4 of 99 slots");
});

Deno.test("cli: a malformed bootstrap address is refused at once with an example", async () => {
  await using home = createHome();
  const r = await home.run(["agent", "--swarm-key", join(home.dir, "k"), "--bootstrap", "10.0.0.1:7070"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, '"10.0.0.1:7070" is not a libp2p multiaddr');
});

Deno.test("cli: up cut short by --timeout says how many agents started, exits 5 and leaves none", async () => {
  await using home = createHome();
  // 50 agents cannot start in 2 s on a machine of a few cores: each costs about 0.2 s of CPU to start.
  const up = await home.run(["up", "--agents", "50", "--timeout", "2"], { timeoutMs: 60_000 });
  assertEquals(up.code, 5, up.stderr);
  assert(
    /Started \d+ of 50 agent\(s\) before the timeout; give more time with --timeout/.test(up.stderr),
    up.stderr,
  );
  assertEquals(processesWith(home.dir).length, 0, "no agent of the session left running");
  assertEquals((await home.run(["down"])).code, 0);
});

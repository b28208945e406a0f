/**
 * Harness for multi-process tests: runs the built `dist/shoal` binary, real agents on 127.0.0.1, each
 * test in its own `SHOAL_HOME`. Helpers return AsyncDisposables.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readStateFile } from "../agent/mod.ts";
import {
  createMeshNode,
  type MeshNode,
  readSwarmKey,
  request,
  type View,
  VIEW_PROTOCOL,
  ViewSchema,
} from "../mesh/mod.ts";
import { waitFor } from "./_wait.ts";

/** The binary under test: `SHOAL_TEST_BIN` or `dist/shoal`. */
export const SHOAL_BIN: string = process.env.SHOAL_TEST_BIN ??
  fileURLToPath(new URL("../dist/shoal", import.meta.url));

if (!existsSync(SHOAL_BIN)) {
  throw new Error(`${SHOAL_BIN} does not exist; run \`npx deno task build\` first`);
}

/** Output of one finished `shoal` run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `shoal args…` to completion with `env` added. */
export function runShoal(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHOAL_BIN, args, {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`shoal ${args.join(" ")} ran past ${options.timeoutMs ?? 60_000} ms\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    });
  });
}

/** A temporary `SHOAL_HOME`, removed on dispose. */
export interface TestHome extends AsyncDisposable {
  dir: string;
  env: Record<string, string>;
  run(args: string[], options?: { timeoutMs?: number; env?: Record<string, string> }): Promise<RunResult>;
}

/** Creates a temporary `SHOAL_HOME`. */
export function createHome(): TestHome {
  const dir = mkdtempSync(join(tmpdir(), "shoal-test-"));
  const env = { SHOAL_HOME: dir };
  return {
    dir,
    env,
    run: (args, options) => runShoal(args, { ...options, env: { ...env, ...options?.env } }),
    [Symbol.asyncDispose]: () => {
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/** One agent of a test mesh, as `shoal info --json` and the session know it. */
export interface TestAgent {
  id: string;
  pid: number;
  dataDir: string;
  addrs: string[];
}

/** A session started with `shoal up`, stopped with `shoal down` on dispose. */
export interface TestMesh extends AsyncDisposable {
  home: TestHome;
  session: string;
  agents: TestAgent[];
  /** `shoal args… --session <session>`. */
  run(args: string[], options?: { timeoutMs?: number }): Promise<RunResult>;
  /** The membership view of one agent, asked directly. */
  viewOf(agent: TestAgent): Promise<View>;
  swarmKeyFile: string;
}

/** `shoal agent` arguments that join `mesh` through its first agent, listening on a loopback port. */
export function joinArgs(mesh: TestMesh): string[] {
  return [
    "--swarm-key",
    mesh.swarmKeyFile,
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--bootstrap",
    mesh.agents[0]!.addrs[0]!,
  ];
}

/** Starts a local mesh with `shoal up`. */
export async function startMesh(
  options: {
    agents: number;
    slots?: number;
    session?: string;
    home?: TestHome;
    /** More arguments for `shoal up` (e.g. `--command-handler FILE`). */
    upArgs?: string[];
  },
): Promise<TestMesh> {
  const home = options.home ?? createHome();
  const ownsHome = !options.home;
  const session = options.session ?? "default";
  const run = (args: string[], o?: { timeoutMs?: number }) => home.run([...args, "--session", session], o);
  const up = await run([
    "up",
    "--agents",
    String(options.agents),
    "--slots",
    String(options.slots ?? 1),
    "--json",
    ...(options.upArgs ?? []),
  ]);
  if (up.code !== 0) {
    // Agents that did start must not outlive the failed test.
    await run(["down", "--purge"]).catch(() => undefined);
    throw new Error(`shoal up failed (${up.code}): ${up.stderr}`);
  }
  const sessionDir = join(home.dir, "sessions", session);
  const record = JSON.parse(readFileSync(join(sessionDir, "session.json"), "utf8")) as {
    jobs: { id: string; dataDir: string; peerId: string; addrs: string[] }[];
  };
  const agents = record.jobs.map((j) => ({
    id: j.peerId,
    pid: Number(j.id),
    dataDir: j.dataDir,
    addrs: j.addrs,
  }));
  const swarmKeyFile = join(sessionDir, "swarm.key");
  let probe: MeshNode | undefined;
  return {
    home,
    session,
    agents,
    run,
    swarmKeyFile,
    async viewOf(agent) {
      probe ??= await createMeshNode({ swarmKey: await readSwarmKey(swarmKeyFile) });
      return await request(probe, agent.addrs[0]!, VIEW_PROTOCOL, {}, {
        schema: ViewSchema,
        timeoutMs: 5_000,
      });
    },
    async [Symbol.asyncDispose]() {
      await probe?.stop();
      // The default grace (10 s) outlasts the agents' own task grace (5 s), so tasks never outlive them.
      await run(["down"]);
      for (const a of agents) if (isRunning(a.pid)) process.kill(a.pid, "SIGKILL");
      if (ownsHome) await home[Symbol.asyncDispose]();
    },
  };
}

/** True while process `pid` exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** A `shoal agent` run in the foreground by the test. */
export interface AgentProcess extends AsyncDisposable {
  pid: number;
  dataDir: string;
  /** Sends a signal to the agent. */
  kill(signal: Deno.Signal): void;
  /** Everything the agent wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code, or 128 + the signal number. */
  exited: Promise<number>;
  /** Waits for `agent.json` with addresses and returns it. */
  ready(timeoutMs?: number): Promise<TestAgent>;
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Starts `shoal agent args…` with a data dir under `home`. Uses `Deno.Command`: Deno's
 * `node:child_process` reports a child that exited 0 after SIGTERM as killed by the signal.
 */
export function spawnAgent(home: TestHome, name: string, args: string[]): AgentProcess {
  const dataDir = join(home.dir, "fg", name);
  const child = new Deno.Command(SHOAL_BIN, {
    args: ["agent", "--data-dir", dataDir, ...args],
    env: home.env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  let done = false;
  const exited = child.status.then(async (s) => {
    done = true;
    await reading;
    return s.signal ? 128 + (SIGNALS[s.signal] ?? 0) : s.code;
  });
  return {
    pid: child.pid,
    dataDir,
    kill: (signal) => child.kill(signal),
    stderr: () => stderr,
    exited,
    async ready(timeoutMs = 10_000) {
      const state = await waitFor(async () => {
        const s = await readStateFile(dataDir);
        return s && s.pid === child.pid && s.addrs.length > 0 ? s : undefined;
      }, { timeout: timeoutMs, what: `agent ${name} to listen; stderr:\n${stderr}` });
      return { id: state.peerId, pid: state.pid, dataDir, addrs: state.addrs };
    },
    async [Symbol.asyncDispose]() {
      if (!done) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** PIDs of live processes whose command line contains `marker` (this test process excluded). */
export function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(marker) && isRunning(pid)) pids.push(pid);
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

/** Writes a topology file into `dir` and returns its path. */
export function writeTopology(dir: string, name: string, xml: string): string {
  const file = join(dir, name);
  Deno.writeTextFileSync(file, xml);
  return file;
}

/** A task as `shoal ps --json` prints it. */
export interface PsTask {
  topologyId: string;
  path: string;
  id: string;
  agent: string;
  state: string;
  pid?: number;
  restarts: number;
  exitCode?: number | null;
  reason?: string;
}

/** `shoal ps --json` of a mesh. */
export async function ps(mesh: TestMesh): Promise<PsTask[]> {
  const r = await mesh.run(["ps", "--json"]);
  if (r.code !== 0) throw new Error(`shoal ps failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { tasks: PsTask[] }).tasks;
}

/** A topology of `n` sleeping tasks in one group. */
export function sleepers(name: string, n: number, seconds = 600): string {
  return `<topology name="${name}">
  <decltask name="Sleeper"><exe reachable="true">sleep ${seconds}</exe></decltask>
  <main name="main"><group name="g" n="${n}"><task>Sleeper</task></group></main>
</topology>`;
}

/**
 * The mesh's events as a tool sees them: `shoal monitor --json` run by the test, one object per line.
 *
 * @module
 */
import { SHOAL_BIN, type TestMesh } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

/** An event as `shoal monitor --json` prints it. */
export type MeshEvent = { type: string; at: number; by?: string; [field: string]: unknown };

/** A running `shoal monitor --json`; stopped on dispose. */
export interface EventLog extends AsyncDisposable {
  /** Every event printed so far. */
  events(): MeshEvent[];
  /** Waits for the first event that `match` accepts and returns it. */
  next(match: (e: MeshEvent) => boolean, options?: { timeout?: number; what?: string }): Promise<MeshEvent>;
}

/**
 * Starts `shoal monitor --json` on `mesh` and returns once it hears every agent of the mesh (their
 * heartbeats reach it over gossip, so gossip events will too).
 */
export async function watchEvents(mesh: TestMesh): Promise<EventLog> {
  const child = new Deno.Command(SHOAL_BIN, {
    args: ["monitor", "--json", "--session", mesh.session],
    env: mesh.home.env,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let out = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
  })();
  const events = () =>
    out.slice(0, out.lastIndexOf("\n") + 1).split("\n").filter(Boolean).map((l) =>
      JSON.parse(l) as MeshEvent
    );
  const log: EventLog = {
    events,
    next: (match, options = {}) =>
      waitFor(() => events().find(match), { timeout: options.timeout ?? 30_000, what: options.what }),
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
      await reading;
    },
  };
  try {
    await waitFor(() => {
      const heard = new Set(events().filter((e) => e.type === "agent:joined").map((e) => e.id));
      return mesh.agents.every((a) => heard.has(a.id));
    }, { timeout: 15_000, what: "the monitor to hear every agent" });
  } catch (err) {
    await log[Symbol.asyncDispose]();
    throw err;
  }
  return log;
}

/**
 * Helpers for the dashboard test: `shoal ui` as a child process (its URL read back from its output) and
 * Debian's Chromium driven by playwright-core.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { SHOAL_BIN, type TestMesh } from "./_harness.ts";
import { waitFor } from "./_wait.ts";

const CHROMIUM = "/usr/bin/chromium";

/** Why the dashboard test cannot run here, or undefined when it can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (run .ci/setup-chromium.sh)`;
}

/** A running `shoal ui`. */
export interface TestUi extends AsyncDisposable {
  url: string;
  address: string;
  token: string;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

/** Starts `shoal ui --json` for the mesh's session and waits for its URL. */
export async function startUi(mesh: TestMesh, args: string[] = []): Promise<TestUi> {
  const child: ChildProcess = spawn(SHOAL_BIN, ["ui", "--json", "--session", mesh.session, ...args], {
    env: { ...process.env, ...mesh.home.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(timer);
  };
  try {
    const line = await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`shoal ui exited with ${child.exitCode}: ${err}`);
      return out.includes("\n") ? out.split("\n")[0] : undefined;
    }, { timeout: 20_000, what: "shoal ui to print its URL" });
    const { url, address, token } = JSON.parse(line!) as { url: string; address: string; token: string };
    return { url, address, token, stderr: () => err, [Symbol.asyncDispose]: stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Headless Chromium; closed on dispose. */
export async function launchChromium(): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

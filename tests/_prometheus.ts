/**
 * A real Prometheus server (Debian's `prometheus`) for the metrics test: its own config and data dir, a
 * loopback port chosen by the kernel and read back from its "Listening on" log line.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./_wait.ts";

/** Why the Prometheus test cannot run here, or undefined when it can. */
export function prometheusMissing(): string | undefined {
  const r = spawnSync("prometheus", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? undefined : "prometheus is not installed (run .ci/setup-prometheus.sh)";
}

/** A running test Prometheus. */
export interface TestPrometheus extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The file_sd file it watches: write targets here. */
  targetsFile: string;
  /** Runs an instant query; returns the result vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
}

/** Starts Prometheus scraping every 1 s the targets in its `targetsFile`. */
export async function startPrometheus(): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), "shoal-prom-"));
  const targetsFile = join(dir, "shoal.json");
  writeFileSync(targetsFile, "[]\n");
  writeFileSync(
    join(dir, "prometheus.yml"),
    `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: shoal
    file_sd_configs:
      - files: ["${targetsFile}"]
        refresh_interval: 1s
`,
  );
  const child: ChildProcess = spawn("prometheus", [
    `--config.file=${join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    "--web.listen-address=127.0.0.1:0",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d) => (log += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await waitFor(() => /msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(log)?.[1], {
      timeout: 20_000,
      what: "prometheus to listen",
    });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/-/ready`).then((r) => r.text().then(() => r.ok))), {
      timeout: 20_000,
      what: "prometheus to be ready",
    });
    return {
      url,
      targetsFile,
      async query(promql) {
        const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const body = await res.json() as {
          status: string;
          error?: string;
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
        if (body.status !== "success") throw new Error(`Query "${promql}" failed: ${body.error}`);
        return body.data.result;
      },
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${log}`, { cause: err });
  }
}

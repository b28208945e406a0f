/**
 * The dashboard with 10,000 tasks against the same page with 100, in one run: the time from opening the
 * page to its data drawn, the time one redraw of the task tree takes (what every batch of task events
 * costs), and how many elements the tree holds (collapsed branches, 200 children shown per branch).
 * Two local agents; the tasks run `true`, so they start and exit (the tree shows them as done).
 *
 * Run: `npx deno task bench ui_tasks` or `npx deno run -A bench/ui_tasks.ts [tasks]`. Needs Chromium.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const bin = fileURLToPath(new URL("../dist/shoal", import.meta.url));
const N = Number(process.argv[2] ?? 10_000);
const BASE = 100;
const home = mkdtempSync(join(tmpdir(), "shoal-bench-ui-"));
const env = { ...process.env, SHOAL_HOME: home, SHOAL_SESSION: "bench" };

function shoal(args: string[]): string {
  console.error(`ui_tasks: shoal ${args.join(" ")}`);
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function topology(name: string, n: number): string {
  const file = join(home, `${name}.xml`);
  writeFileSync(
    file,
    `<topology name="${name}">
  <decltask name="T"><exe reachable="true">true</exe></decltask>
  <main name="main"><group name="g" n="${n}"><task>T</task></group></main>
</topology>`,
  );
  return file;
}

/** Opens the dashboard and measures it with the only active topology's tasks. */
async function measure(url: string, tasks: number) {
  console.error(`ui_tasks: measuring the page with ${tasks} tasks`);
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    const t0 = performance.now();
    await page.goto(url);
    await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
    await page.click("button[data-tab=topologies]");
    await page.waitForFunction(
      `document.querySelector("#tree .meta")?.textContent?.startsWith("${tasks} task")`,
      null,
      {
        timeout: 120_000,
      },
    );
    const readyMs = performance.now() - t0;
    const redraws: number[] = [];
    for (let i = 0; i < 5; i++) {
      redraws.push(
        await page.evaluate(
          "(() => { const t = performance.now(); renderTree(); return performance.now() - t; })()",
        ),
      );
    }
    // Open the group holding every task: at most 200 rows appear.
    const t1 = performance.now();
    if (tasks > 300) await page.click('[data-node="main/g"] > .row');
    await page.waitForSelector('[data-path="main/g/T_0"]', { timeout: 60_000 });
    const expandMs = performance.now() - t1;
    const elements = await page.evaluate("document.querySelectorAll('#tree *').length") as number;
    const rows = await page.evaluate("document.querySelectorAll('#tree [data-path]').length") as number;
    redraws.sort((a, b) => a - b);
    return {
      readyMs: Math.round(readyMs),
      redrawMs: Math.round(redraws[2]! * 10) / 10,
      expandMs: Math.round(expandMs),
      elements,
      rows,
    };
  } finally {
    await browser.close();
  }
}

let ui: ReturnType<typeof spawn> | undefined;
try {
  shoal(["up", "--agents", "2", "--slots", String(Math.ceil(N / 2))]);
  ui = spawn(bin, ["ui", "--json"], { env, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  ui.stdout!.on("data", (d) => (out += d));
  shoal(["topology", "activate", topology("Small", BASE), "--id", "small"]);
  const deadline = Date.now() + 60_000;
  while (!out.includes("\n")) {
    if (ui.exitCode !== null || Date.now() > deadline) {
      throw new Error(`shoal ui did not start (${ui.exitCode})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const { url } = JSON.parse(out.split("\n")[0]!) as { url: string };
  const small = await measure(url, BASE);
  shoal(["topology", "stop", "--id", "small"]);
  shoal(["topology", "activate", topology("Big", N), "--id", "big"]);
  const big = await measure(url, N);
  console.log(JSON.stringify({
    scenario: "ui_tasks",
    tasks: N,
    shoal: big,
    baseline: { tasks: BASE, ...small },
    ratio: {
      readyMs: Math.round(big.readyMs / small.readyMs * 100) / 100,
      redrawMs: Math.round(big.redrawMs / Math.max(0.1, small.redrawMs) * 100) / 100,
      elements: Math.round(big.elements / small.elements * 100) / 100,
    },
  }));
} finally {
  ui?.kill("SIGTERM");
  spawnSync(bin, ["down"], { env });
  rmSync(home, { recursive: true, force: true });
}

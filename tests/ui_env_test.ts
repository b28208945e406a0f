/**
 * The dashboard's environments page in a real browser (Debian's Chromium through playwright-core) on a real
 * 2-agent mesh: an environment made with `shoal env create` shows DEPLOYED with its task tree, the buttons
 * are the events env/'s state machine allows, pressing CONFIGURE and START_ACTIVITY drives the real `direct`
 * tasks (arguments included) to CONFIGURED and RUNNING with run number 1, a transition made from the CLI
 * arrives live, refusals come back with their reason, GO_ERROR shows its reason; a task failing CONFIGURE
 * shows why, and RECOVER brings the environment back. The screenshot goes to `dist/ui-test/`, and to
 * `docs/` with `SHOAL_UPDATE_SCREENSHOTS=1` (the README's).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { allowedEvents, type EnvState } from "../env/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { SHOAL_BIN, startMesh, writeTopology } from "./_harness.ts";
import { script } from "./_task_scripts.ts";
import { chromiumMissing, launchChromium, startUi } from "./_ui.ts";

const missing = chromiumMissing();
const ignore = !!missing && !process.env.CI;
if (missing) console.warn(`ui env tests: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const T = 60_000;
const READERS = ["main/readers/Reader_0", "main/readers/Reader_1"];

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(`${ROOT}dist/ui-test`, { recursive: true });
  await page.screenshot({ path: `${ROOT}dist/ui-test/${name}.png`, fullPage: true });
  if (process.env.SHOAL_UPDATE_SCREENSHOTS) {
    await page.screenshot({ path: `${ROOT}docs/${name}.png`, fullPage: true });
  }
}

async function buttons(page: Page): Promise<string[]> {
  return await page.$$eval("#env-buttons button", (bs) => bs.map((b) => b.dataset.event ?? ""));
}

/** Waits until the selected environment is `state` and every reader task `task`. */
async function reaches(page: Page, state: EnvState, task: string): Promise<void> {
  await page.waitForSelector(`#env[data-state=${state}]`, { timeout: T });
  await page.waitForSelector(`#envs tr[data-env=readout][data-state=${state}]`, { timeout: T });
  for (const path of READERS) {
    await page.waitForSelector(`#env-tree [data-path="${path}"][data-state=${task}]`, { timeout: T });
  }
  // The buttons follow the state once nothing is under way.
  await page.waitForFunction(
    `[...document.querySelectorAll("#env-buttons button")].every((b) => !b.disabled)`,
    null,
    { timeout: T },
  );
  assertEquals(await buttons(page), allowedEvents(state));
}

Deno.test({
  name:
    "ui: the environments page shows state, run number and tasks live, and its buttons drive the environment",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using mesh = await startMesh({ agents: 2, slots: 2 });
    const log = join(mesh.home.dir, "transitions.log");
    const on = script(
      mesh,
      "on.sh",
      `echo "$DDS_TASK_PATH $SHOAL_ENV_EVENT $SHOAL_RUN_NUMBER $SHOAL_ENV_ARG_DETECTOR" >> ${log}`,
    );
    writeTopology(
      mesh.home.dir,
      "readout.xml",
      `<topology name="readout">
  <decltask name="Reader"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <decltask name="Plain"><exe reachable="true">sleep 600</exe></decltask>
  <main name="main"><task>Plain</task><group name="readers" n="2"><task>Reader</task></group></main>
</topology>`,
    );
    const envFile = join(mesh.home.dir, "readout.env.json");
    Deno.writeTextFileSync(
      envFile,
      JSON.stringify({ topology: "readout.xml", control: [{ tasks: "main/readers/.*", mode: "direct" }] }),
    );
    const created = await mesh.run(["env", "create", envFile], { timeoutMs: 60_000 });
    assertEquals(created.code, 0, created.stderr);

    await using ui = await startUi(mesh);
    await using browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, bypassCSP: true });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(ui.url);
    await page.waitForSelector("body[data-ready=true]", { timeout: T });
    await page.click("button[data-tab=envs]");

    // DEPLOYED, with who created it and how long it took; the tree: the group and its direct tasks, the
    // uncontrolled task INVARIANT.
    await reaches(page, "DEPLOYED", "STANDBY");
    const row = await page.textContent("#envs tr[data-env=readout]") ?? "";
    assertStringIncludes(row, "DEPLOY STANDBY → DEPLOYED ok");
    assert(/\d+(\.\d+)? m?s/.test(row), `the duration in ${row}`);
    assertEquals(await page.textContent("#env-run"), "no run yet");
    await page.waitForSelector('#env-tree [data-node="main/readers"]', { timeout: T });
    await page.waitForSelector('#env-tree [data-path="main/Plain_0"][data-state=INVARIANT]', { timeout: T });

    // CONFIGURE with an argument: the tasks answer through the task API, the page shows the result.
    await page.fill("#env-args", "detector=TPC");
    await page.click("#env-buttons button[data-event=CONFIGURE]");
    await reaches(page, "CONFIGURED", "CONFIGURED");
    const configured = await page.waitForSelector("#env-result .sent[data-event=CONFIGURE] .result.ok", {
      timeout: T,
    });
    const said = await configured.textContent() ?? "";
    assertStringIncludes(said, "CONFIGURE: DEPLOYED → CONFIGURED in");
    assertStringIncludes(said, "2/2 task(s) answered ok");
    const seen = () => readFileSync(log, "utf8").split("\n").filter(Boolean).sort();
    assertEquals(seen(), READERS.map((p) => `${p} CONFIGURE  TPC`));

    // START_ACTIVITY: RUNNING, run number 1, the tasks green.
    await page.fill("#env-args", "");
    await page.click("#env-buttons button[data-event=START_ACTIVITY]");
    await reaches(page, "RUNNING", "RUNNING");
    await page.waitForSelector('#env-run[data-run="1"]', { timeout: T });
    assertEquals(await page.textContent("#env-run"), "run 1");
    assertEquals(await page.textContent("#envs tr[data-env=readout] .run"), "1");
    assertEquals(
      await page.evaluate(
        `getComputedStyle(document.querySelector('#env-tree [data-path="${
          READERS[0]
        }"] .dot')).backgroundColor`,
      ),
      "rgb(46, 157, 79)",
    );
    assertStringIncludes(
      await page.textContent("#env-result .sent[data-event=START_ACTIVITY] .result.ok") ?? "",
      "run 1",
    );
    assertEquals(
      seen().filter((l) => l.includes("START_ACTIVITY")),
      READERS.map((p) => `${p} START_ACTIVITY 1 `),
    );
    // The history names the dashboard as who asked, as every peer sees it.
    const shown = await mesh.run(["env", "show", "readout", "--json"]);
    assertEquals(shown.code, 0, shown.stderr);
    const last = JSON.parse(shown.stdout).lastTransition as { event: string; by: string };
    assertEquals(last.event, "START_ACTIVITY");
    assert(last.by.endsWith(" (dashboard)"), last.by);
    assertStringIncludes(await page.textContent("#envs tr[data-env=readout]") ?? "", last.by);
    await shot(page, "dashboard-environment");

    // Another controller's transition arrives live.
    const stop = await mesh.run(["env", "control", "readout", "-e", "STOP_ACTIVITY"], { timeoutMs: 60_000 });
    assertEquals(stop.code, 0, stop.stderr);
    await reaches(page, "CONFIGURED", "CONFIGURED");
    assertStringIncludes(
      await page.textContent("#envs tr[data-env=readout]") ?? "",
      "STOP_ACTIVITY RUNNING → CONFIGURED ok",
    );

    // Refused: an event the state does not allow, shown with env/'s reason; nothing changes.
    await page.evaluate('controlEnv("readout", "RECOVER")');
    const refusal = await page.waitForSelector(
      '#env-result .sent[data-event=RECOVER] .result.error[data-status="409"]',
      { timeout: T },
    );
    assertStringIncludes(
      await refusal.textContent() ?? "",
      `Event "RECOVER" is not allowed in state CONFIGURED of environment "readout"; allowed: ${
        allowedEvents("CONFIGURED").join(", ")
      }`,
    );
    // Arguments that are not name=value never leave the page.
    await page.fill("#env-args", "oops");
    await page.click("#env-buttons button[data-event=RESET]");
    const bad = await page.waitForSelector("#env-result .sent[data-event=RESET] .result.error", {
      timeout: T,
    });
    assertEquals(await bad.textContent(), '"oops" is not name=value');
    assertEquals(await page.getAttribute("#env", "data-state"), "CONFIGURED");

    // The API: token and same origin, as the console; bad input gets a clear error.
    const url = `http://${ui.address}/api/env/control`;
    const post = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() as Record<string, unknown> };
    };
    const auth = { authorization: `Bearer ${ui.token}` };
    assertEquals((await post({ id: "readout", event: "RESET" })).status, 401);
    const cross = await post({ id: "readout", event: "RESET" }, { ...auth, origin: "http://evil.example" });
    assertEquals(cross.status, 403);
    const refused = await post({ id: "readout", event: "RECOVER" }, auth);
    assertEquals(refused.status, 409);
    assertEquals(refused.body.allowed, allowedEvents("CONFIGURED"));
    const unknown = await post({ id: "nope", event: "CONFIGURE" }, auth);
    assertEquals(unknown.status, 404);
    assertStringIncludes(String(unknown.body.error), 'No environment "nope"');
    const badArgs = await post({ id: "readout", event: "RESET", args: { n: 4 } }, auth);
    assertEquals(badArgs.status, 400);
    assertEquals((await post({ id: "readout" }, auth)).status, 400);
    assertEquals(await page.getAttribute("#env", "data-state"), "CONFIGURED");

    // GO_ERROR with a reason: ERROR, the reason shown, RECOVER the one way out.
    await page.fill("#env-args", "reason=beam-lost");
    await page.click("#env-buttons button[data-event=GO_ERROR]");
    await page.waitForSelector("#env[data-state=ERROR]", { timeout: T });
    await page.waitForSelector("#envs tr[data-env=readout][data-state=ERROR]", { timeout: T });
    await page.waitForFunction(
      `[...document.querySelectorAll("#env-buttons button")].every((b) => !b.disabled)`,
      null,
      { timeout: T },
    );
    assertEquals(await buttons(page), allowedEvents("ERROR"));
    assertStringIncludes(await page.textContent("#env-reason") ?? "", ": beam-lost");
    assertEquals(
      await page.evaluate(`getComputedStyle(document.querySelector("#env-state")).backgroundColor`),
      "rgb(211, 58, 44)",
    );

    // Destroyed: it leaves the page.
    assertEquals((await mesh.run(["env", "destroy", "readout", "--force"], { timeoutMs: 60_000 })).code, 0);
    await page.waitForSelector("#envs tr[data-env=readout]", { state: "detached", timeout: T });
    await page.waitForSelector("#envs-empty", { state: "visible", timeout: T });
    assertEquals(errors, []);
  },
});

Deno.test({
  name:
    "ui: a transition that fails shows the task's reason, the environment in ERROR, and RECOVER as the way out",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using mesh = await startMesh({ agents: 1, slots: 2 });
    const marker = join(mesh.home.dir, "failed-once");
    const on = script(
      mesh,
      "on.sh",
      `if [ "$SHOAL_ENV_EVENT" = CONFIGURE ] && [ ! -e ${marker} ]; then touch ${marker}; echo "no calibration" >&2; exit 3; fi`,
    );
    writeTopology(
      mesh.home.dir,
      "f.xml",
      `<topology name="f">
  <decltask name="D"><exe reachable="true">${SHOAL_BIN} env transitions --exec ${on}</exe></decltask>
  <main name="main"><task>D</task></main>
</topology>`,
    );
    const envFile = join(mesh.home.dir, "f.env.yaml");
    Deno.writeTextFileSync(envFile, "topology: f.xml\ncontrol:\n  - tasks: .*\n    mode: direct\n");
    assertEquals((await mesh.run(["env", "create", envFile], { timeoutMs: 60_000 })).code, 0);

    await using ui = await startUi(mesh);
    await using browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, bypassCSP: true });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(ui.url);
    await page.waitForSelector("body[data-ready=true]", { timeout: T });
    await page.click("button[data-tab=envs]");
    await page.waitForSelector("#env[data-env=f][data-state=DEPLOYED]", { timeout: T });

    await page.click("#env-buttons button[data-event=CONFIGURE]");
    const failed = await page.waitForSelector(
      '#env-result .sent[data-event=CONFIGURE] .result.error[data-status="422"]',
      { timeout: T },
    );
    assertStringIncludes(
      await failed.textContent() ?? "",
      'CONFIGURE of "f" failed, the environment is in ERROR: Task "main/D_0" failed CONFIGURE: no calibration',
    );
    await page.waitForSelector("#env[data-state=ERROR]", { timeout: T });
    const task = await page.waitForSelector('#env-tree [data-path="main/D_0"][data-state=ERROR]', {
      timeout: T,
    });
    assertStringIncludes(await task.textContent() ?? "", "no calibration");
    assertStringIncludes(await page.textContent("#env-reason") ?? "", "no calibration");
    // The list row is redrawn from the environment's record, which may come a moment after the detail view.
    await page.waitForFunction(
      `(document.querySelector("#envs tr[data-env=f]")?.textContent ?? "").includes("CONFIGURE DEPLOYED → ERROR failed")`,
      null,
      { timeout: T },
    );
    await page.waitForFunction(
      `[...document.querySelectorAll("#env-buttons button")].every((b) => !b.disabled)`,
      null,
      { timeout: T },
    );
    assertEquals(await buttons(page), allowedEvents("ERROR"));

    await page.click("#env-buttons button[data-event=RECOVER]");
    await page.waitForSelector("#env[data-state=DEPLOYED]", { timeout: T });
    await page.waitForSelector('#env-tree [data-path="main/D_0"][data-state=STANDBY]', { timeout: T });
    await page.waitForFunction(`document.querySelector("#env-reason").textContent === ""`, null, {
      timeout: T,
    });
    await page.click("#env-buttons button[data-event=CONFIGURE]");
    await page.waitForSelector('#env-tree [data-path="main/D_0"][data-state=CONFIGURED]', { timeout: T });
    await page.waitForSelector("#env[data-state=CONFIGURED]", { timeout: T });
    assertEquals((await mesh.run(["env", "destroy", "f"], { timeoutMs: 60_000 })).code, 0);
    assertEquals(errors, []);
  },
});

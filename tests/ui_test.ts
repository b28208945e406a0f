/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) on a real 3-agent mesh: the
 * token is required, the agents show, an activated topology's tasks turn running, a crash turns red, a
 * task's log lines appear live, a custom command's replies are shown, key-values list their writers.
 * Screenshots go to `dist/ui-test/`, and to `docs/` with `SHOAL_UPDATE_SCREENSHOTS=1` (the README's).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { startMesh, writeTopology } from "./_harness.ts";
import { script } from "./_task_scripts.ts";
import { chromiumMissing, launchChromium, startUi } from "./_ui.ts";

const missing = chromiumMissing();
const ignore = !!missing && !process.env.CI;
if (missing) console.warn(`ui tests: ${ignore ? "skipped" : "cannot run"}: ${missing}`);

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const T = 60_000;

function logIncludes(text: string): string {
  return `document.querySelector("#log-text")?.textContent?.includes(${JSON.stringify(text)})`;
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(`${ROOT}dist/ui-test`, { recursive: true });
  await page.screenshot({ path: `${ROOT}dist/ui-test/${name}.png` });
  if (process.env.SHOAL_UPDATE_SCREENSHOTS) await page.screenshot({ path: `${ROOT}docs/${name}.png` });
}

Deno.test({
  name:
    "ui: the dashboard needs its token, shows agents, task states, live logs, command replies, key-values",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using mesh = await startMesh({ agents: 3, slots: 2, upArgs: ["--metrics", "127.0.0.1:0"] });
    await using ui = await startUi(mesh);
    assert(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/.test(ui.url), ui.url);

    // No token, a wrong one: refused, page and API alike.
    const base = `http://${ui.address}`;
    for (const path of ["/", "/api/state", "/assets/app.js", `/?token=${ui.token}x`]) {
      const res = await fetch(base + path);
      await res.body?.cancel();
      assertEquals(res.status, 401, path);
    }
    await using browser = await launchChromium();
    // The page's CSP forbids eval; playwright evaluates string functions (this file has no DOM types).
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, bypassCSP: true });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const refused = await page.goto(base);
    assertEquals(refused?.status(), 401);
    assertStringIncludes(await page.textContent("body") ?? "", "Access token required");

    await page.goto(ui.url);
    // The token moved into a cookie and out of the address bar.
    assertEquals(new URL(page.url()).search, "");
    await page.waitForSelector("body[data-ready=true]", { timeout: T });
    // Page functions are strings: this file is type-checked without the DOM library.
    await page.waitForFunction(
      'document.querySelectorAll("#agents tr[data-state=alive]").length === 3',
      null,
      {
        timeout: T,
      },
    );
    const ids = await page.$$eval("#agents tr[data-agent]", (rows) => rows.map((r) => r.dataset.agent));
    assertEquals(ids.sort(), mesh.agents.map((a) => a.id).sort());
    const table = await page.textContent("#agents tbody") ?? "";
    assert(/127\.0\.0\.1:\d+/.test(table), `metrics endpoints in the agents table: ${table}`);

    // A topology activated from the CLI appears and its tasks turn running, a crash red.
    const echo = script(
      mesh,
      "echo.sh",
      `echo "hello from $DDS_TASK_PATH"
exec $SHOAL cmd recv --count 0 --reply "pong from $DDS_TASK_PATH"`,
    );
    const writer = script(mesh, "writer.sh", `$SHOAL kv put Color "blue-$DDS_TASK_INDEX" && exec sleep 600`);
    // The crash comes when the test says so: after the page showed the task running.
    const crashNow = join(mesh.home.dir, "crash-now");
    const file = writeTopology(
      mesh.home.dir,
      "board.xml",
      `<topology name="Board">
  <property name="Color"/>
  <decltask name="Crasher"><exe reachable="true">sh -c 'while [ ! -e ${crashNow} ]; do sleep 0.1; done; exit 7'</exe></decltask>
  <decltask name="Writer"><exe reachable="true">${writer}</exe>
    <properties><name access="write">Color</name></properties></decltask>
  <decltask name="Echo"><exe reachable="true">${echo}</exe></decltask>
  <main name="main"><task>Crasher</task><task>Writer</task><group name="workers" n="2"><task>Echo</task></group></main>
</topology>`,
    );
    await page.click("button[data-tab=topologies]");
    const act = await mesh.run(["topology", "activate", file]);
    assertEquals(act.code, 0, act.stderr);
    await page.waitForSelector("#topology option[value=Board]", { state: "attached", timeout: T });
    for (const path of ["main/Crasher_0", "main/Writer_0", "main/workers/Echo_0", "main/workers/Echo_1"]) {
      await page.waitForSelector(`[data-path="${path}"][data-state=running]`, { timeout: T });
    }
    writeFileSync(crashNow, "");
    const crashed = await page.waitForSelector('[data-path="main/Crasher_0"][data-state=crashed]', {
      timeout: T,
    });
    assertStringIncludes(await crashed.textContent() ?? "", "exit 7");
    assertEquals(
      await page.evaluate(
        `getComputedStyle(document.querySelector('[data-path="main/Crasher_0"] .dot')).backgroundColor`,
      ),
      "rgb(211, 58, 44)",
    );

    // Its log, live: the first line, then what it prints when a command comes.
    await page.click('[data-path="main/workers/Echo_0"] .row');
    await page.waitForFunction(logIncludes("hello from main/workers/Echo_0"), null, { timeout: T });
    await shot(page, "dashboard-topology");

    // A custom command from the console, and both replies.
    await page.click("button[data-tab=cmd]");
    await page.fill("#cmd-condition", "main/workers/.*");
    await page.fill("#cmd-payload", "status please");
    await page.fill("#cmd-wait", "2");
    await page.click("#cmd-send");
    await page.waitForSelector("#replies .result", { timeout: T });
    const replies = await page.$$eval("#replies .reply pre", (ps) => ps.map((p) => p.textContent));
    assertEquals(replies.sort(), ["pong from main/workers/Echo_0", "pong from main/workers/Echo_1"]);
    // Without a count it waits for one reply from each running task the condition names.
    await page.fill("#cmd-wait", "");
    await page.fill("#cmd-payload", "again");
    await page.click("#cmd-send");
    await page.waitForFunction('document.querySelectorAll("#replies .result").length === 2', null, {
      timeout: T,
    });
    const second = await page.$$eval(
      "#replies .sent:first-child .reply pre",
      (ps) => ps.map((p) => p.textContent),
    );
    assertEquals(second.sort(), ["pong from main/workers/Echo_0", "pong from main/workers/Echo_1"]);
    assertStringIncludes(await page.textContent("#replies .sent:first-child") ?? "", "2 replies");
    await shot(page, "dashboard-commands");
    await page.click("button[data-tab=topologies]");
    await page.waitForFunction(logIncludes("status please"), null, { timeout: T });

    // Key-values with their writers and versions.
    await page.click("button[data-tab=kv]");
    const kv = await page.waitForSelector('#kv tr[data-key=Color][data-writer="main/Writer_0"]', {
      timeout: T,
    });
    assertStringIncludes(await kv.textContent() ?? "", "blue-0");

    await page.click("button[data-tab=agents]");
    await shot(page, "dashboard-agents");
    assertEquals(errors, []);
  },
});

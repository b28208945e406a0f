import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { assertEquals } from "../tests/_assert.ts";
import { assetsModule } from "../scripts/embed_ui.ts";
import { ASSETS } from "./_assets.ts";

Deno.test("ui: the embedded assets are those of ui/assets (run scripts/embed_ui.ts after editing them)", () => {
  const file = fileURLToPath(new URL("./_assets.ts", import.meta.url));
  assertEquals(readFileSync(file, "utf8") === assetsModule(), true, "ui/_assets.ts is stale");
  assertEquals(Object.keys(ASSETS).sort(), [
    "/assets/app.css",
    "/assets/app.js",
    "/assets/envs.js",
    "/assets/uplot.css",
    "/assets/uplot.js",
    "/index.html",
  ]);
});

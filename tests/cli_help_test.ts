/**
 * `shoal … --help` tells the truth, for every command of the tree `buildProgram()` builds: each has examples,
 * and each default is shown in the unit its option takes (`--grace <seconds>` never shows 10000).
 */
import type { Command, Option } from "commander";
import { assert, assertEquals } from "./_assert.ts";
import { buildProgram } from "../cli/main.ts";
import { secondsOption } from "../cli/options.ts";
import { parseBytes } from "../pool/health.ts";

/** Every command below `program`, with its path (`["topology", "stop"]`). */
function commandsOf(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return cmd.commands.flatMap((
    c,
  ) => [{ path: [...path, c.name()], cmd: c }, ...commandsOf(c, [...path, c.name()])]);
}

/** What `--help` prints for `cmd`, including the text added after it. */
function helpOf(cmd: Command): string {
  let out = "";
  const saved = cmd.configureOutput();
  cmd.configureOutput({ writeOut: (s) => out += s, getOutHelpWidth: () => 110 });
  try {
    cmd.outputHelp();
  } finally {
    cmd.configureOutput(saved);
  }
  return out;
}

/** The unit an option takes, from its flags: `<seconds>` → "seconds", `<bytes/s>` → "bytes/s". */
function unitOf(o: Option): string | undefined {
  return /<([^>]+)>|\[([^\]]+)\]/.exec(o.flags)?.slice(1).find((u) => u !== undefined);
}

/**
 * Every default the help line of `o` shows: commander's `(default: …)` and any `(default …)` written in the
 * description itself.
 */
function shownDefaults(o: Option): string[] {
  const shown = [...o.description.matchAll(/\(default:? ([^)]*)\)/g)].map((m) => m[1]!);
  if (o.defaultValueDescription !== undefined) shown.push(o.defaultValueDescription);
  else if (o.defaultValue !== undefined) shown.push(JSON.stringify(o.defaultValue));
  return shown;
}

/** Why `text`, shown as the default of an option taking `unit`, is in the wrong unit; undefined if right. */
function wrongUnit(unit: string, text: string): string | undefined {
  if (unit === "seconds") {
    // 10,000 s is almost three hours: no default here is that long, but 10000 ms (shown raw) is common.
    const big = [...text.matchAll(/\d[\d_.]*/g)].map((m) => Number(m[0].replaceAll("_", ""))).find((n) =>
      n >= 10_000
    );
    return big === undefined ? undefined : `${big} seconds looks like milliseconds`;
  }
  if (unit === "ms") {
    const n = [...text.matchAll(/\d[\d_.]*/g)].map((m) => Number(m[0].replaceAll("_", "")));
    const odd = n.find((x) => !Number.isInteger(x) || (x > 0 && x < 10));
    return odd === undefined ? undefined : `${odd} ms looks like seconds`;
  }
  if (unit === "size" || unit.startsWith("bytes")) {
    for (const m of text.matchAll(/(\d[\d.]*)\s*([KMGT]i?B|[KMGT]|B)?\b/gi)) {
      const bytes = parseBytes(m[0]);
      if (!m[2] && bytes > 0 && bytes < 1024) return `"${m[0]}" has no unit and is under 1 KiB`;
    }
  }
  return undefined;
}

Deno.test("cli help: every command and subcommand has an Examples section", async () => {
  const all = commandsOf(await buildProgram());
  assert(all.length >= 40, `found only ${all.length} commands`);
  const without = all.filter((c) => c.cmd.name() !== "help" && !helpOf(c.cmd).includes("\nExamples:\n"));
  assertEquals(without.map((c) => `shoal ${c.path.join(" ")}`), []);
});

Deno.test("cli help: every default is shown in the unit its option takes", async () => {
  const wrong: string[] = [];
  for (const { path, cmd } of commandsOf(await buildProgram())) {
    for (const o of cmd.options) {
      const where = `shoal ${path.join(" ")} ${o.flags}`;
      const unit = unitOf(o);
      for (const text of unit ? shownDefaults(o) : []) {
        const why = wrongUnit(unit!, text);
        if (why) wrong.push(`${where}: default "${text}": ${why}`);
      }
      if (o.parseArg === secondsOption) {
        if (unit !== "seconds") wrong.push(`${where}: parsed as seconds, but its flags do not say <seconds>`);
        // The code holds milliseconds: what is shown must be that number of seconds.
        if (typeof o.defaultValue === "number") {
          const shown = o.defaultValueDescription?.split(",")[0];
          if (shown !== String(o.defaultValue / 1000)) {
            wrong.push(`${where}: default ${o.defaultValue} ms is shown as "${shown ?? o.defaultValue}"`);
          }
        }
      }
    }
  }
  assertEquals(wrong, []);
});

Deno.test("cli help: the checks above catch a milliseconds default shown as seconds", () => {
  assertEquals(wrongUnit("seconds", "10000"), "10000 seconds looks like milliseconds");
  assertEquals(wrongUnit("seconds", "1800, as DDS"), undefined);
  assertEquals(wrongUnit("ms", "0.5"), "0.5 ms looks like seconds");
  assertEquals(wrongUnit("ms", "2000"), undefined);
  assertEquals(wrongUnit("size", "16"), '"16" has no unit and is under 1 KiB');
  assertEquals(wrongUnit("size", "$SHOAL_STAGE_CACHE_MAX, else 16GiB"), undefined);
  assertEquals(wrongUnit("size", "500 MB"), undefined);
});

Deno.test("cli help: a command line declares in full only the commands it names", async () => {
  const light = await buildProgram(["topology", "validate", "topo.xml"]);
  const full = await buildProgram();
  const named = (p: Command, name: string) => p.commands.find((c) => c.name() === name)!;
  assertEquals(named(light, "up").options, []);
  assert(named(full, "up").options.length > 0);
  assertEquals(
    named(light, "topology").commands.map((c) => c.name()),
    named(full, "topology").commands.map((c) => c.name()),
  );
  // `shoal --help` lists every command with the same summary either way.
  assertEquals(
    light.commands.map((c) => [c.name(), c.description()]),
    full.commands.map((c) => [c.name(), c.description()]),
  );
  assert(full.commands.every((c) => c.description().length > 0), "every command has a summary");
});

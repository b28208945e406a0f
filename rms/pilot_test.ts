import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../tests/_assert.ts";
import { defaultPilot, parsePilotLine, type PilotStep, renderPilot, resolvePilot } from "./pilot.ts";

const names = (steps: PilotStep[]) => steps.map((s) => s.name);

Deno.test("pilot: default steps per mode", () => {
  assertEquals(names(defaultPilot("detach")), [
    "check-env",
    "stage-binary",
    "write-config",
    "start-agent",
    "report",
  ]);
  assertEquals(names(defaultPilot("foreground")).at(-1), "wait-agent");
});

Deno.test("pilot: a site replaces, reorders and extends steps", () => {
  const steps = resolvePilot(defaultPilot("detach"), {
    steps: [
      "check-env",
      { name: "stage-binary", run: "cp /shared/shoal $SHOAL_BIN" },
      "write-config",
      "start-agent",
      "report",
    ],
    insert: [
      { name: "modules", run: "module load gcc" },
      { name: "first", run: "true", before: "check-env" },
      { name: "last", run: "true", after: "report" },
    ],
  });
  assertEquals(names(steps), [
    "first",
    "check-env",
    "stage-binary",
    "write-config",
    "modules",
    "start-agent",
    "report",
    "last",
  ]);
  assertEquals(steps[2]?.run, "cp /shared/shoal $SHOAL_BIN");
});

Deno.test("pilot: unknown, missing and duplicate steps are RangeErrors naming the step", () => {
  const d = defaultPilot("detach");
  assert(
    assertThrows(() => resolvePilot(d, { steps: ["nope", "start-agent", "report"] }), RangeError).message
      .includes('"nope"'),
  );
  assert(
    assertThrows(() => resolvePilot(d, { steps: ["start-agent"] }), RangeError).message.includes('"report"'),
  );
  assert(
    assertThrows(() => resolvePilot(d, { insert: [{ name: "x", run: "y", after: "zzz" }] }), RangeError)
      .message.includes('"zzz"'),
  );
  assert(
    assertThrows(() => resolvePilot(d, { insert: [{ name: "report", run: "y" }] }), RangeError).message
      .includes("twice"),
  );
});

Deno.test("pilot: protocol lines", () => {
  assertEquals(parsePilotLine("@@shoal:step stage-binary"), { type: "step", step: "stage-binary" });
  assertEquals(parsePilotLine("@@shoal:fail check-env this host is aarch64"), {
    type: "fail",
    step: "check-env",
    reason: "this host is aarch64",
  });
  assertEquals(parsePilotLine("@@shoal:exit 143"), { type: "exit", code: 143 });
  assertEquals(parsePilotLine("hello"), undefined);
  assertEquals(parsePilotLine("@@shoal:report {bad json"), undefined);
  const report = parsePilotLine(
    '@@shoal:report {"host":"n1","name":"a","dataDir":"/d","tasks":1,"agent":{"peerId":"12D","pid":7,"addrs":["/ip4/1.2.3.4/tcp/1"]}}',
  );
  assertEquals(report?.type === "report" && report.report.agent.pid, 7);
});

function runScript(script: string): { code: number; lines: string[] } {
  const r = new Deno.Command("bash", { args: ["-c", script], stdout: "piped", stderr: "piped" }).outputSync();
  return { code: r.code, lines: new TextDecoder().decode(r.stdout).split("\n").filter(Boolean) };
}

Deno.test("pilot: steps run in order in one shell, report on stdout, and stop at the first failure", () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-pilot-"));
  try {
    const base = {
      mode: "detach" as const,
      swarmKey: "/key/swarm/psk/1.0.0/\n/base16/\nabc",
      vars: { SHOAL_SLOTS: "4" },
      rawVars: { SHOAL_WORK_DIR: JSON.stringify(dir) },
      env: "export FROM_SITE=site",
    };
    const ok = runScript(renderPilot({
      ...base,
      steps: resolvePilot(defaultPilot("detach"), {
        steps: [
          { name: "greet", run: 'export GREETING="hi $FROM_SITE"' },
          { name: "start-agent", run: 'echo "$GREETING $SHOAL_SLOTS" >"$SHOAL_WORK_DIR/out"' },
          {
            name: "report",
            run:
              `echo '@@shoal:report {"host":"h","name":"n","dataDir":"/d","tasks":1,"agent":{"peerId":"p","pid":1,"addrs":[]}}'`,
          },
        ],
      }),
    }));
    assertEquals(ok.code, 0);
    assertEquals(ok.lines.map((l) => parsePilotLine(l)?.type), ["step", "step", "step", "report"]);
    assertEquals(readFileSync(join(dir, "out"), "utf8"), "hi site 4\n");

    const bad = runScript(renderPilot({
      ...base,
      steps: resolvePilot(defaultPilot("detach"), {
        steps: [
          { name: "modules", run: "echo 'module: command not found' >&2; false" },
          { name: "start-agent", run: 'touch "$SHOAL_WORK_DIR/started"' },
          "report",
        ],
      }),
    }));
    assertEquals(bad.code, 1);
    assertEquals(parsePilotLine(bad.lines.at(-1)!), {
      type: "fail",
      step: "modules",
      reason: "module: command not found",
    });
    assertThrows(() => readFileSync(join(dir, "started")), Error);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

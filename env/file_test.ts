import { assertEquals, assertThrows } from "../tests/_assert.ts";
import { EnvFileError } from "./errors.ts";
import { classify, parseEnvFile, timeoutFor } from "./file.ts";

Deno.test("env file: rules apply first-match, hooks are set apart, unmatched tasks are none", () => {
  const env = parseEnvFile(
    JSON.stringify({
      topology: "t.xml",
      timeouts: { default: 5, CONFIGURE: 60 },
      control: [
        { tasks: "main/R_.*", mode: "direct" },
        { tasks: "main/.*_0", mode: "basic", critical: false },
        { tasks: "main/H_1", mode: "hook", trigger: "before_CONFIGURE-10", timeout: 2 },
      ],
    }),
    "/x/e.json",
  );
  assertEquals(env.topologyFile, "/x/t.xml");
  assertEquals(timeoutFor(env.control, "CONFIGURE"), 60_000);
  assertEquals(timeoutFor(env.control, "RESET"), 5_000);
  const c = classify(env.control, ["main/R_0", "main/S_0", "main/H_1", "main/N_1"]);
  assertEquals(c.tasks, {
    "main/R_0": { mode: "direct", critical: true, state: "STANDBY" },
    "main/S_0": { mode: "basic", critical: false, state: "STANDBY" },
    "main/N_1": { mode: "none", critical: false, state: "INVARIANT" },
  });
  assertEquals(c.hooks.map((h) => [h.path, h.rule.trigger, h.rule.timeoutMs]), [
    ["main/H_1", "before_CONFIGURE-10", 2_000],
  ]);
});

Deno.test("env file: a bare DDS topology is an environment of none tasks", () => {
  const env = parseEnvFile('<topology name="t"></topology>', "t.xml");
  assertEquals(env.control.rules, []);
  assertEquals(classify(env.control, ["main/a_0"]).tasks["main/a_0"]?.mode, "none");
});

Deno.test("env file: bad input says what and where", () => {
  const bad = (o: unknown) =>
    assertThrows(() => parseEnvFile(JSON.stringify(o), "e.json"), EnvFileError).message;
  assertEquals(
    bad({ topology: "t.xml", control: [{ tasks: "a", mode: "hook" }] }),
    'Environment file "e.json": control[0] is a hook without a trigger (e.g. "before_CONFIGURE")',
  );
  assertEquals(
    bad({ topology: "t.xml", timeouts: { CONFIGUR: 1 } }),
    'Environment file "e.json": timeout for "CONFIGUR" names no event',
  );
  assertEquals(
    bad({ topology: "t.xml", control: [{ tasks: "(", mode: "direct" }] }),
    'Environment file "e.json": control[0].tasks "(" is no regex',
  );
  assertEquals(
    bad({ topology: "t.xml", control: [{ tasks: "a", mode: "sometimes" }] }).startsWith(
      'Environment file "e.json" is invalid: at "control.0.mode": Invalid type',
    ),
    true,
  );
});

Deno.test("env file: YAML reads as JSON does; a broken one says so", () => {
  const yaml = `topology: t.xml
timeouts: { default: 5 }
control:
  - tasks: main/R_.*
    mode: direct
  - tasks: main/H_0
    mode: hook
    trigger: enter_RUNNING+3
`;
  const env = parseEnvFile(yaml, "/x/e.yaml");
  assertEquals(env.topologyFile, "/x/t.xml");
  assertEquals(env.control.rules.map((r) => [r.tasks, r.mode, r.trigger ?? null]), [
    ["main/R_.*", "direct", null],
    ["main/H_0", "hook", "enter_RUNNING+3"],
  ]);
  const broken = assertThrows(() => parseEnvFile("topology: [a\n", "b.yaml"), EnvFileError);
  assertEquals(broken.message.startsWith('Environment file "b.yaml" is neither JSON nor YAML:'), true);
  assertEquals(
    assertThrows(() => parseEnvFile("control: []\n", "c.yaml"), EnvFileError).message,
    'Environment file "c.yaml" names no topology (a "topology: FILE" field)',
  );
});

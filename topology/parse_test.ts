import { assertEquals, assertOk as assert, assertThrows, ddsText } from "./_testdata.ts";
import { TopologyValidationError } from "./errors.ts";
import { parseTopology } from "./parse.ts";

const MINIMAL = (body: string, decls = "") =>
  `<topology name="t">${decls}<decltask name="a"><exe>run</exe></decltask>\n<main name="main">${body}</main></topology>`;

function issuesOf(xml: string, opts: Parameters<typeof parseTopology>[1] = {}) {
  return assertThrows(() => parseTopology(xml, { file: "t.xml", ...opts }), TopologyValidationError).issues;
}

Deno.test("parse: every valid DDS test topology loads", () => {
  for (
    const name of [
      "custom_cmd_test.xml",
      "env_test.xml",
      "sleep_test.xml",
      "topology_scheduler_test_1.xml",
      "topology_test_assets.xml",
      "topology_test_property_1.xml",
      "tutorial1_topo.xml",
      "tutorial2_topo.xml",
    ]
  ) {
    const topo = parseTopology(ddsText(name), { file: name });
    assert(topo.tasks.length > 0, name);
  }
});

Deno.test("parse: topology_test_2..5 (old or broken schema) are refused with every error", () => {
  for (const n of [2, 3, 4, 5]) {
    const issues = issuesOf(ddsText(`topology_test_${n}.xml`), { file: `topology_test_${n}.xml` });
    assert(issues.length >= 3, `topology_test_${n}: ${issues.length}`);
    assert(issues.every((i) => i.line > 0 && i.column > 0 && i.hint.length > 0 && i.file.endsWith(".xml")));
    assert(issues.some((i) => i.name === "task" && /Unknown element <task>/.test(i.message)));
  }
  const five = issuesOf(ddsText("topology_test_5.xml"));
  assert(five.some((i) => i.name === "n" && i.message.includes("<main>")), "main n refused");
  const three = issuesOf(ddsText("topology_test_3.xml"));
  assertEquals(three.find((i) => i.name === "minRequired")?.line, 15);
});

Deno.test("parse: variables substitute into n and exe, and --var overrides them", () => {
  const xml = `<topology name="t"><var name="n" value="3"/><var name="cmd" value="app -x"/>
    <decltask name="a"><exe>\${cmd} %taskIndex%</exe></decltask>
    <main name="main"><group name="g" n="\${n}"><task>a</task></group></main></topology>`;
  const topo = parseTopology(xml);
  assertEquals(topo.main.groups[0]?.n, 3);
  assertEquals(topo.tasks[0]?.exe, "app -x %taskIndex%");
  assertEquals(topo.vars, { n: "3", cmd: "app -x" });
  assertEquals(parseTopology(xml, { vars: { n: "7" } }).main.groups[0]?.n, 7);
  const bad = issuesOf(xml, { vars: { n: "0" } });
  assert(bad[0]?.message.includes('n="0"'), bad[0]?.message);
});

Deno.test("parse: an unknown variable is refused with its name and position", () => {
  const issues = issuesOf(MINIMAL(`<group name="g" n="\${count}"><task>a</task></group>`));
  assertEquals(issues[0]?.name, "count");
  assertEquals([issues[0]?.line, issues[0]?.column], [2, 19]);
  assert(issues[0]?.hint.includes("--var count="));
});

Deno.test("parse: schema errors — order, unknown attributes, names, nesting, n < 1 — are all reported", () => {
  const xml = `<topology name="t">
<decltask name="a"><exe>run</exe></decltask>
<property name="p"/>
<decltask name="b c" colour="red"><env>x</env><exe>run</exe></decltask>
<main name="main">
  <group name="g" n="0"><task>a</task><group name="h" n="1"/></group>
</main>
</topology>`;
  const issues = issuesOf(xml);
  const msgs = issues.map((i) => `${i.line}:${i.name}:${i.message}`);
  assert(msgs.some((m) => m.startsWith("3:property:Element <property> is out of order")), msgs.join("\n"));
  assert(msgs.some((m) => m.startsWith("4:b c:") && m.includes("not a valid name")), msgs.join("\n"));
  assert(msgs.some((m) => m.startsWith('4:colour:Unknown attribute "colour"')), msgs.join("\n"));
  assert(msgs.some((m) => m.startsWith("4:exe:Element <exe> is out of order")), msgs.join("\n"));
  assert(msgs.some((m) => m.startsWith("6:0:") && m.includes("from 1 to")), msgs.join("\n"));
  assert(msgs.some((m) => m.startsWith("6:h:Groups cannot be nested")), msgs.join("\n"));
  assertEquals(issues.map((i) => i.line), [...issues.map((i) => i.line)].sort((a, b) => a - b));
});

Deno.test("parse: semantic errors — undeclared tasks, collections, properties, requirements, triggers, assets", () => {
  const xml = `<topology name="t">
<decltask name="a"><exe>run</exe>
  <requirements><name>r1</name></requirements>
  <properties><name access="read">p1</name></properties>
  <triggers><name>t1</name></triggers>
  <assets><name>as1</name></assets>
</decltask>
<declcollection name="c"><tasks><name>zz</name></tasks></declcollection>
<main name="main"><task>b</task><collection>c</collection><collection>d</collection></main>
</topology>`;
  const issues = issuesOf(xml);
  assertEquals(issues.map((i) => `${i.line}:${i.column}:${i.name}`), [
    "3:17:r1",
    "4:15:p1",
    "5:13:t1",
    "6:11:as1",
    "8:33:zz",
    "9:19:b",
    "9:59:d",
  ]);
  assert(issues[0]?.message.includes('Requirement "r1" used by task "a" is not declared'));
  assert(issues[0]?.hint.includes("<declrequirement"));
});

Deno.test("parse: duplicate declarations and bad requirement values are refused", () => {
  const issues = issuesOf(MINIMAL(
    "<task>a</task>",
    `<declrequirement name="r" type="hostname" value="(unclosed"/>
     <declrequirement name="m" type="maxinstances" value="lots"/>
     <decltask name="a"><exe>x</exe></decltask>`,
  ));
  assert(issues.some((i) => i.message.includes("invalid regular expression")));
  assert(issues.some((i) => i.message.includes("needs a whole number")));
  assert(issues.some((i) => i.message.includes('Task "a" is declared more than once (first at line 3)')));
});

// Bounded work, not wall-clock time, is what keeps these quick: size is checked before parsing, and element
// count, depth and task count are capped while parsing (speed belongs in bench/, not in assertions).
Deno.test("parse: hostile inputs are refused by size, depth, element and task limits", () => {
  const laughs =
    `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>` +
    `<topology name="&lol2;"/>`;
  assertEquals(issuesOf(laughs)[0]?.name, "DOCTYPE");
  const external = `<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><topology name="&x;"/>`;
  assertEquals(issuesOf(external)[0]?.name, "DOCTYPE");
  assert(issuesOf(`<topology name="&x;"/>`)[0]?.message.includes("Malformed XML"));
  const deep = "<a>".repeat(100_000) + "</a>".repeat(100_000);
  assert(issuesOf(deep)[0]?.message.includes("nested deeper"));
  const junk = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
  assert(issuesOf(new TextDecoder().decode(junk))[0]?.message.includes("Malformed XML"));
  const big = "<topology>" + " ".repeat(100 * 1024 * 1024);
  assert(issuesOf(big)[0]?.message.includes("more than the limit"));
  const many = `<topology name="t">${"<var name='a' value='1'/>".repeat(600_000)}</topology>`;
  assert(issuesOf(many)[0]?.message.includes("more than 500000 elements"));
  const huge = MINIMAL(`<group name="g" n="4294967295"><task>a</task></group>`);
  assert(issuesOf(huge)[0]?.message.includes("more than the limit of 2000000"));
});

Deno.test("parse: refuses a non-topology root and empty input", () => {
  assert(issuesOf(`<dds/>`)[0]?.message.includes("not <topology>"));
  assert(issuesOf(``)[0]?.message.length);
});

Deno.test("parse: an aborted signal stops parsing", () => {
  const ctrl = new AbortController();
  ctrl.abort();
  try {
    parseTopology(ddsText("sleep_test.xml"), { signal: ctrl.signal });
    throw new Error("not aborted");
  } catch (err) {
    assertEquals((err as Error).name, "AbortError");
  }
});

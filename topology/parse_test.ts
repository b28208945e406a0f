import { assertEquals, assertOk as assert, assertThrows, testdataText } from "./_testdata.ts";
import { TopologyValidationError } from "./errors.ts";
import { parseTopology } from "./parse.ts";

const MINIMAL = (body: string, decls = "") =>
  `<topology name="t">${decls}<decltask name="a"><exe>run</exe></decltask>\n<main name="main">${body}</main></topology>`;

function issuesOf(xml: string, opts: Parameters<typeof parseTopology>[1] = {}) {
  return assertThrows(() => parseTopology(xml, { file: "t.xml", ...opts }), TopologyValidationError).issues;
}

Deno.test("parse: every valid test topology loads", () => {
  const sizes = Object.fromEntries(
    ["ripple.xml", "beacon.xml", "chorus.xml", "fleet.xml", "survey.xml"].map((name) => {
      const topo = parseTopology(testdataText(name), { file: name });
      return [name, [topo.tasks.length, topo.collections.length, topo.main.groups.length]];
    }),
  );
  assertEquals(sizes, {
    "ripple.xml": [2, 1, 1],
    "beacon.xml": [1, 1, 1],
    "chorus.xml": [2, 0, 1],
    "fleet.xml": [3, 0, 3],
    "survey.xml": [5, 2, 2],
  });
  const survey = parseTopology(testdataText("survey.xml"));
  assertEquals(survey.vars, {
    stations: "6",
    labHosts: "^node-[0-9]+\\.lab$",
    probeCmd: "probe --mode deep",
  });
  assertEquals(survey.properties.map((p) => `${p.name}:${p.scope}`), [
    "Reading:collection",
    "Calibration:collection",
    "Summary:global",
    "Alarm:global",
  ]);
  assertEquals(survey.requirements.map((r) => r.type), [
    "hostname",
    "wnname",
    "groupname",
    "maxinstances",
    "gpu",
    "custom",
  ]);
  assertEquals(survey.requirements[0]?.value, "^node-[0-9]+\\.lab$");
});

/** `line:column:name` of every issue, in order. */
const where = (issues: { line: number; column: number; name: string }[]) =>
  issues.map((i) => `${i.line}:${i.column}:${i.name}`);

Deno.test("parse: legacy_ports.xml (DDS 1.x schema) is refused with every error", () => {
  const issues = issuesOf(testdataText("legacy_ports.xml"), { file: "legacy_ports.xml" });
  assertEquals(where(issues), [
    "2:1:decltask",
    "5:3:task",
    "9:3:collection",
    "13:3:group",
    "17:3:n",
    "17:3:name",
    "18:5:minRequired",
  ]);
  assert(issues.every((i) => i.file === "legacy_ports.xml" && i.hint.length > 0));
  assertEquals(issues[1]?.message, "Unknown element <task> in <topology>");
  assert(issues[1]?.hint.startsWith("Did you mean <decltask>?"), issues[1]?.hint);
  assert(issues[2]?.hint.startsWith("Did you mean <declcollection>?"), issues[2]?.hint);
  assert(issues[3]?.hint.startsWith("Did you mean a <group> inside <main>?"), issues[3]?.hint);
  assertEquals(issues[4]?.message, 'Unknown attribute "n" on <main>');
  assertEquals(issues[5]?.message, 'Missing attribute "name" on <main>');
  assertEquals(issues[6]?.message, 'Unknown attribute "minRequired" on <group>');
});

Deno.test("parse: broken_names.xml is refused with every name, count, order and nesting error", () => {
  const issues = issuesOf(testdataText("broken_names.xml"));
  assertEquals(where(issues).map((w) => w.replace(/:sensorx+$/, ":sensorx…")), [
    "3:3:sensorx…",
    "7:3:property",
    "7:3:dew point",
    "8:3:priority",
    "8:3:exe",
    "10:5:exe",
    "12:3:exe",
    "14:5:0",
    "16:7:inner",
  ]);
  const messages = issues.map((i) => i.message);
  assert(messages[0]?.endsWith("of <decltask> is not a valid name"), messages[0]);
  assert(issues[0]?.hint.includes("1 to 128 characters"), issues[0]?.hint);
  assertEquals(messages.slice(1), [
    "Element <property> is out of order in <topology>",
    'Attribute name="dew point" of <property> is not a valid name',
    'Unknown attribute "priority" on <decltask>',
    "<decltask> needs at least one <exe>",
    "Element <exe> is out of order in <decltask>",
    "<decltask> needs at least one <exe>",
    'Attribute n="0" of <group> must be a whole number from 1 to 4294967295',
    'Groups cannot be nested: <group> "inner" is inside <group> "outer"',
  ]);
});

Deno.test("parse: a start tag broken over lines is reported at its <", () => {
  const issues = issuesOf(
    `<topology name="t">\n  <decltask\n    name="a b"><exe>x</exe></decltask>\n</topology>`,
  );
  assertEquals(where(issues.filter((i) => i.name === "a b")), ["2:3:a b"]);
  const crlf = issuesOf(`<topology\r\n name="a b">\r\n</topology>`);
  assertEquals(where(crlf.filter((i) => i.name === "a b")), ["1:1:a b"]);
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
    parseTopology(testdataText("ripple.xml"), { signal: ctrl.signal });
    throw new Error("not aborted");
  } catch (err) {
    assertEquals((err as Error).name, "AbortError");
  }
});

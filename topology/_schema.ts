// The rules of DDS's topology.xsd as a table, and a checker that reports every violation with its position.
import type { XmlNode } from "./_xml.ts";
import type { TopologyIssue } from "./types.ts";

type AttrType = "name" | "string" | "nonEmpty" | "size" | "bool" | readonly string[];
interface AttrSpec {
  type: AttrType;
  required: boolean;
}
interface Particle {
  tag: string;
  min: number;
  max: number;
  spec: ElemSpec;
}
interface ElemSpec {
  attrs: Record<string, AttrSpec>;
  seq?: Particle[];
  /** Simple content type; elements with `seq` have element-only content. */
  text?: "name" | "nonEmpty";
}

const NAME_RE = /^[a-zA-Z0-9#@~_-]{1,128}$/;
const SIZE_RE = /^\s*\+?[0-9]+\s*$/;
const BOOL_RE = /^\s*(true|false|1|0)\s*$/;
const MAX_UNSIGNED = 4294967295;

const req = (type: AttrType): AttrSpec => ({ type, required: true });
const opt = (type: AttrType): AttrSpec => ({ type, required: false });
const many = (tag: string, spec: ElemSpec, min = 0): Particle => ({ tag, min, max: Infinity, spec });
const once = (tag: string, spec: ElemSpec, min = 0): Particle => ({ tag, min, max: 1, spec });

const nameText: ElemSpec = { attrs: {}, text: "name" };
const nameList: ElemSpec = { attrs: {}, seq: [many("name", nameText)] };
const exe: ElemSpec = { attrs: { reachable: opt("bool") }, text: "nonEmpty" };
const propertyRef: ElemSpec = { attrs: { access: req(["read", "write", "readwrite"]) }, text: "name" };
const taskRef: ElemSpec = { attrs: { n: opt("size") }, text: "name" };
const group: ElemSpec = {
  attrs: { name: req("name"), n: req("size") },
  seq: [many("task", nameText), many("collection", nameText)],
};

/** The schema's root element and everything below it. */
const TOPOLOGY: ElemSpec = {
  attrs: { name: req("name") },
  seq: [
    many("var", { attrs: { name: req("name"), value: req("string") } }),
    many("property", { attrs: { name: req("name"), scope: opt(["global", "collection"]) } }),
    many("asset", {
      attrs: {
        name: req("name"),
        type: req(["inline"]),
        visibility: req(["task", "global"]),
        value: req("nonEmpty"),
      },
    }),
    many("declrequirement", {
      attrs: {
        name: req("name"),
        type: req(["wnname", "hostname", "groupname", "gpu", "maxinstances", "custom"]),
        value: req("nonEmpty"),
      },
    }),
    many("decltrigger", {
      attrs: {
        name: req("name"),
        condition: req(["TaskCrashed"]),
        action: req(["RestartTask"]),
        arg: req("nonEmpty"),
      },
    }),
    many("decltask", {
      attrs: { name: req("name") },
      seq: [
        once("exe", exe, 1),
        once("env", exe),
        once("requirements", nameList),
        once("properties", { attrs: {}, seq: [many("name", propertyRef)] }),
        once("triggers", nameList),
        once("assets", nameList),
      ],
    }, 1),
    many("declcollection", {
      attrs: { name: req("name") },
      seq: [once("requirements", nameList), once("tasks", { attrs: {}, seq: [many("name", taskRef, 1)] }, 1)],
    }),
    once("main", {
      attrs: { name: req("name") },
      seq: [many("task", nameText), many("collection", nameText), many("group", group)],
    }, 1),
  ],
};

/** Hints for elements people write from older DDS versions or by analogy. */
const RENAMED: Record<string, string> = {
  task: "<decltask>",
  collection: "<declcollection>",
  group: "a <group> inside <main>",
  port: "<property>",
  requirement: "<declrequirement>",
  trigger: "<decltrigger>",
};

/** Checks `root` against DDS's schema and appends every violation to `issues`. */
export function checkSchema(root: XmlNode, file: string, issues: TopologyIssue[]): void {
  const issue = (node: XmlNode, name: string, message: string, hint: string) =>
    issues.push({ file, line: node.line, column: node.column, name, message, hint });
  if (root.tag !== "topology") {
    issue(
      root,
      root.tag,
      `The root element is <${root.tag}>, not <topology>`,
      'Start the file with <topology name="…">.',
    );
    return;
  }
  checkElement(root, TOPOLOGY, issue);
}

type Report = (node: XmlNode, name: string, message: string, hint: string) => void;

function checkElement(node: XmlNode, spec: ElemSpec, issue: Report): void {
  const where = `<${node.tag}>`;
  for (const [attr, value] of Object.entries(node.attrs)) {
    if (attr.startsWith("xmlns") || attr.startsWith("xsi:")) continue;
    const a = Object.hasOwn(spec.attrs, attr) ? spec.attrs[attr] : undefined;
    if (!a) {
      const allowed = Object.keys(spec.attrs);
      issue(
        node,
        attr,
        `Unknown attribute "${attr}" on ${where}`,
        allowed.length
          ? `Allowed attributes of ${where}: ${allowed.join(", ")}.`
          : `${where} takes no attributes.`,
      );
      continue;
    }
    checkValue(node, `Attribute ${attr}="${clip(value)}" of ${where}`, value, a.type, issue);
  }
  for (const [attr, a] of Object.entries(spec.attrs)) {
    if (a.required && !Object.hasOwn(node.attrs, attr)) {
      issue(node, attr, `Missing attribute "${attr}" on ${where}`, `Add ${attr}="…" to ${where}.`);
    }
  }
  if (spec.text) {
    for (const child of node.children) {
      issue(
        child,
        child.tag,
        `Unexpected element <${child.tag}> inside ${where}`,
        `${where} holds only text.`,
      );
    }
    checkValue(node, `The content "${clip(node.text)}" of ${where}`, node.text, spec.text, issue);
    return;
  }
  if (node.text.trim() !== "") {
    issue(node, clip(node.text.trim()), `Unexpected text inside ${where}`, `${where} holds only elements.`);
  }
  checkSequence(node, spec.seq ?? [], issue);
}

function checkSequence(node: XmlNode, seq: Particle[], issue: Report): void {
  const where = `<${node.tag}>`;
  const order = seq.map((p) => p.tag).join(", ");
  let pos = 0;
  let count = 0;
  for (const child of node.children) {
    let found = -1;
    for (let i = pos; i < seq.length; i++) {
      if (seq[i]?.tag === child.tag) {
        found = i;
        break;
      }
    }
    if (found < 0) {
      const earlier = seq.findIndex((p) => p.tag === child.tag);
      if (earlier >= 0) {
        const p = seq[earlier] as Particle;
        issue(
          child,
          child.tag,
          `Element <${child.tag}> is out of order in ${where}`,
          `Put <${child.tag}> before <${seq[pos]?.tag}>; the order in ${where} is: ${order}.`,
        );
        checkElement(child, p.spec, issue);
      } else if (child.tag === "group" && node.tag === "group") {
        issue(
          child,
          child.attrs.name ?? "group",
          `Groups cannot be nested: <group> "${child.attrs.name ?? ""}" is inside <group> "${
            node.attrs.name ?? ""
          }"`,
          "Move the inner group directly under <main>.",
        );
      } else {
        const renamed = node.tag === "topology" ? RENAMED[child.tag] : undefined;
        issue(
          child,
          child.tag,
          `Unknown element <${child.tag}> in ${where}`,
          renamed
            ? `Did you mean ${renamed}? Allowed in ${where}: ${order}.`
            : seq.length
            ? `Allowed in ${where}, in this order: ${order}.`
            : `${where} holds no elements.`,
        );
      }
      continue;
    }
    for (let i = pos; i < found; i++) missing(node, seq[i] as Particle, i === pos ? count : 0, issue);
    if (found !== pos) count = 0;
    pos = found;
    count++;
    const p = seq[pos] as Particle;
    if (count > p.max) {
      issue(
        child,
        child.tag,
        `${where} may contain at most one <${child.tag}>`,
        `Remove the extra <${child.tag}>.`,
      );
    }
    checkElement(child, p.spec, issue);
  }
  for (let i = pos; i < seq.length; i++) missing(node, seq[i] as Particle, i === pos ? count : 0, issue);
}

function missing(node: XmlNode, p: Particle, count: number, issue: Report): void {
  if (count < p.min) {
    issue(
      node,
      p.tag,
      `<${node.tag}> needs at least one <${p.tag}>`,
      `Add a <${p.tag}> element to <${node.tag}>.`,
    );
  }
}

function checkValue(node: XmlNode, what: string, value: string, type: AttrType, issue: Report): void {
  if (typeof type !== "string") {
    if (!type.includes(value)) {
      issue(node, value, `${what} must be one of: ${type.join(", ")}`, "Use one of them.");
    }
    return;
  }
  switch (type) {
    case "name":
      if (!NAME_RE.test(value)) {
        issue(
          node,
          value,
          `${what} is not a valid name`,
          "Names are 1 to 128 characters among letters, digits and # @ ~ _ -.",
        );
      }
      return;
    case "nonEmpty":
      if (value.length === 0) issue(node, value, `${what} must not be empty`, "Give it a value.");
      return;
    case "size": {
      const n = SIZE_RE.test(value) ? Number(value) : NaN;
      if (!(n >= 1 && n <= MAX_UNSIGNED)) {
        issue(
          node,
          value,
          `${what} must be a whole number from 1 to ${MAX_UNSIGNED}`,
          "Use a count of 1 or more.",
        );
      }
      return;
    }
    case "bool":
      if (!BOOL_RE.test(value)) issue(node, value, `${what} must be true or false`, "Use true or false.");
      return;
    case "string":
      return;
  }
}

/** Shortens long values in messages. */
export function clip(value: string): string {
  return value.length > 40 ? `${value.slice(0, 37)}...` : value;
}

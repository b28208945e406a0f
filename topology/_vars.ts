// Topology variables: DDS replaces every `${name}` in the file with the value of `<var name value>` before
// validating it against the schema, so `n` attributes and exe lines can use them.
import type { XmlNode } from "./_xml.ts";
import type { TopologyIssue } from "./types.ts";

const REF_RE = /\$\{([^}]*)\}/g;

/**
 * Collects `<var>` declarations (a later one wins, as in DDS) and applies `overrides` on top.
 * Returns them in declaration order.
 */
export function collectVars(root: XmlNode, overrides: Record<string, string>): Map<string, string> {
  const vars = new Map<string, string>();
  for (const child of root.children) {
    if (child.tag === "var" && child.attrs.name !== undefined) {
      vars.set(child.attrs.name, child.attrs.value ?? "");
    }
  }
  for (const [name, value] of Object.entries(overrides)) vars.set(name, value);
  return vars;
}

/**
 * Replaces `${name}` in every attribute value and text below `root` (except in `<var>` itself). An unknown
 * variable is left in place and reported.
 */
export function substituteVars(
  root: XmlNode,
  vars: Map<string, string>,
  file: string,
  issues: TopologyIssue[],
): void {
  const visit = (node: XmlNode) => {
    if (node.tag === "var") return;
    for (const key in node.attrs) {
      const value = node.attrs[key] as string;
      if (value.includes("${")) node.attrs[key] = replace(node, value);
    }
    if (node.text.includes("${")) node.text = replace(node, node.text);
    for (const child of node.children) visit(child);
  };
  const replace = (node: XmlNode, value: string) =>
    value.replace(REF_RE, (whole, name: string) => {
      const v = vars.get(name);
      if (v !== undefined) return v;
      issues.push({
        file,
        line: node.line,
        column: node.column,
        name,
        message: `Unknown variable "${whole}" in <${node.tag}>`,
        hint: `Declare <var name="${name}" value="…"/> or pass --var ${name}=VALUE; ` +
          `for a shell variable write $${name} without braces.`,
      });
      return whole;
    });
  visit(root);
}

/**
 * Parses `name=value` strings (from repeated `--var` options) into an override map.
 *
 * @throws {TypeError} when an entry has no `=` or an empty name.
 */
export function parseVarOverrides(assignments: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of assignments) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new TypeError(`Invalid variable override "${a}": write --var name=value`);
    out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

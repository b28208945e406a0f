// A bounded XML reader over saxes: builds a small element tree with one-based positions, refuses DOCTYPEs
// (so no entity can ever be declared or expanded) and stops at the first well-formedness error.
import { SaxesParser } from "saxes";
import { TopologyValidationError } from "./errors.ts";

/** An element of the parsed document. */
export interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  /** Concatenated character data directly inside the element. */
  text: string;
  line: number;
  column: number;
  children: XmlNode[];
}

/** Bounds that keep a hostile file from using much time or memory. */
export interface XmlLimits {
  maxDepth: number;
  maxElements: number;
}

class Stop extends Error {}

/**
 * Parses `text` into an element tree. Throws {@linkcode TopologyValidationError} with a single issue for
 * anything that is not well-formed XML, has a DOCTYPE, or exceeds `limits`.
 */
export function parseXml(text: string, file: string, limits: XmlLimits): XmlNode {
  const parser = new SaxesParser({ position: true });
  let root: XmlNode | undefined;
  const stack: XmlNode[] = [];
  let elements = 0;
  let refusal: { message: string; hint: string; name: string; line: number; column: number } | undefined;

  const refuse = (message: string, hint: string, name = "") => {
    refusal ??= { message, hint, name, line: parser.line, column: parser.column + 1 };
    throw new Stop();
  };

  parser.on("error", (err) => {
    const message = err.message.replace(/^[^:]*:\d+:\d+: /, "");
    refuse(
      `Malformed XML: ${message}`,
      "Fix the XML syntax at this position; the file must be well-formed XML.",
    );
  });
  parser.on("doctype", () => {
    refuse(
      "A DOCTYPE is not allowed in a topology file",
      "Remove the <!DOCTYPE …> declaration; topologies use no DTD and no custom entities.",
      "DOCTYPE",
    );
  });
  parser.on("opentagstart", (tag) => {
    if (++elements > limits.maxElements) {
      refuse(
        `The file has more than ${limits.maxElements} elements`,
        "Use groups with n or collections with n instead of repeating elements.",
        tag.name,
      );
    }
    if (stack.length >= limits.maxDepth) {
      refuse(
        `Elements are nested deeper than ${limits.maxDepth} levels`,
        "Topology files are shallow.",
        tag.name,
      );
    }
    const node: XmlNode = {
      tag: tag.name,
      attrs: {},
      text: "",
      line: parser.line,
      column: Math.max(1, parser.column - tag.name.length - 1),
      children: [],
    };
    // The event comes after the character that ends the name; when that was a line break (a start tag
    // broken over lines, as formatters write long ones), the `<` is on the line before.
    if (parser.column === 0) {
      const lt = text.lastIndexOf("<", parser.position - 1);
      node.line = parser.line - 1;
      node.column = lt - text.lastIndexOf("\n", lt - 1);
    }
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(node);
    else root = node;
    stack.push(node);
  });
  parser.on("opentag", (tag) => {
    const node = stack[stack.length - 1];
    if (node) Object.assign(node.attrs, tag.attributes);
    if (tag.isSelfClosing) stack.pop();
  });
  parser.on("closetag", (tag) => {
    if (!tag.isSelfClosing) stack.pop();
  });
  const onText = (t: string) => {
    const node = stack[stack.length - 1];
    if (node) node.text += t;
  };
  parser.on("text", onText);
  parser.on("cdata", onText);

  try {
    parser.write(text).close();
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
  }
  if (!refusal && !root) {
    refusal = {
      message: "The file contains no XML element",
      hint: 'A topology starts with <topology name="…">.',
      name: "",
      line: 1,
      column: 1,
    };
  }
  if (refusal) throw new TopologyValidationError([{ file, ...refusal }]);
  return root as XmlNode;
}

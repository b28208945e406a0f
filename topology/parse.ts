/**
 * Parsing of DDS topology XML into the declared model, with every problem reported at once.
 *
 * @module
 */
import { buildTopology } from "./_build.ts";
import { checkSchema } from "./_schema.ts";
import { collectVars, substituteVars } from "./_vars.ts";
import { parseXml } from "./_xml.ts";
import { TopologyValidationError } from "./errors.ts";
import type { Topology, TopologyIssue } from "./types.ts";
import { validateTopology } from "./validate.ts";

/** Options of {@linkcode parseTopology} and {@linkcode loadTopology}. */
export interface ParseOptions {
  /** File name used in issues. Default `<topology>`. */
  file?: string;
  /** Variable overrides (`--var name=value`); they win over `<var>` declarations. */
  vars?: Record<string, string>;
  /** Refuse larger inputs before parsing. Default 32 MiB. */
  maxBytes?: number;
  /** Refuse topologies expanding to more runtime tasks. Default 2,000,000. */
  maxTasks?: number;
  /** Most issues listed; the rest are summarised. Default 1000. */
  maxIssues?: number;
  signal?: AbortSignal;
}

/** Default cap on a topology file's size. */
export const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
const MAX_DEPTH = 16;
const MAX_ELEMENTS = 500_000;

/**
 * Parses and validates a DDS topology: well-formedness, the rules of DDS's `topology.xsd` after `${var}`
 * substitution, and references between declarations.
 *
 * @throws {TopologyValidationError} listing every problem found.
 * @example
 * ```ts
 * const topo = parseTopology(xml, { file: "topo.xml", vars: { nInstances: "10" } });
 * ```
 */
export function parseTopology(text: string, options: ParseOptions = {}): Topology {
  options.signal?.throwIfAborted();
  const file = options.file ?? "<topology>";
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (text.length > maxBytes) {
    throw new TopologyValidationError([{
      file,
      line: 1,
      column: 1,
      name: String(text.length),
      message: `The topology is ${text.length} bytes, more than the limit of ${maxBytes}`,
      hint: "Check that this is the right file; topologies are small (groups repeat elements with n).",
    }]);
  }
  const root = parseXml(text, file, { maxDepth: MAX_DEPTH, maxElements: MAX_ELEMENTS });
  options.signal?.throwIfAborted();

  const issues: TopologyIssue[] = [];
  const vars = collectVars(root, options.vars ?? {});
  substituteVars(root, vars, file, issues);
  checkSchema(root, file, issues);
  const { topology, positions } = buildTopology(root, vars);
  issues.push(...validateTopology(topology, { file, positions, maxTasks: options.maxTasks }));
  if (issues.length) throw new TopologyValidationError(sortAndCap(issues, options.maxIssues ?? 1000));
  return topology;
}

function sortAndCap(issues: TopologyIssue[], max: number): TopologyIssue[] {
  issues.sort((a, b) => a.line - b.line || a.column - b.column);
  if (issues.length <= max) return issues;
  const rest = issues.length - max;
  const last = issues[max - 1] as TopologyIssue;
  return [
    ...issues.slice(0, max),
    {
      ...last,
      name: String(rest),
      message: `${rest} more issues not shown`,
      hint: "Fix the ones above first.",
    },
  ];
}

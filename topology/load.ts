/**
 * Reading a topology file from disk, size-capped before it is read.
 *
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import { TopologyFileError, TopologyValidationError } from "./errors.ts";
import { DEFAULT_MAX_BYTES, type ParseOptions, parseTopology } from "./parse.ts";
import { topologyFromJson } from "./json.ts";
import type { Topology } from "./types.ts";

/**
 * Reads and parses the topology at `path`. Files larger than `options.maxBytes` are refused without reading.
 *
 * @throws {TopologyFileError} when the file cannot be read.
 * @throws {TopologyValidationError} when the topology is invalid.
 */
export async function loadTopology(
  path: string,
  options: Omit<ParseOptions, "file"> = {},
): Promise<Topology> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new TopologyFileError(path, `"${path}" is not a file`);
    if (info.size > maxBytes) {
      throw new TopologyValidationError([{
        file: path,
        line: 1,
        column: 1,
        name: String(info.size),
        message: `The topology file is ${info.size} bytes, more than the limit of ${maxBytes}`,
        hint: "Check that this is the right file; topologies are small (groups repeat elements with n).",
      }]);
    }
    text = await readFile(path, { encoding: "utf8", signal: options.signal });
  } catch (err) {
    if (err instanceof TopologyFileError || err instanceof TopologyValidationError) throw err;
    if (err instanceof Error && err.name === "AbortError") throw err;
    const code = (err as { code?: string }).code;
    const why = code === "ENOENT"
      ? "does not exist"
      : code === "EACCES"
      ? "is not readable"
      : "cannot be read";
    throw new TopologyFileError(path, `Topology file "${path}" ${why}`, { cause: err });
  }
  if (/^\s*\{/.test(text)) return fromJsonText(text, path, options.maxTasks);
  return parseTopology(text, { ...options, file: path });
}

/** The JSON form (`shoal topology view --json` or `topologyToJson`), recognised by its leading `{`. */
function fromJsonText(text: string, file: string, maxTasks?: number): Topology {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TopologyValidationError([{
      file,
      line: 1,
      column: 1,
      name: file,
      message: `The file starts with "{" but is not valid JSON: ${(err as Error).message}`,
      hint: "Fix the JSON, or give a DDS topology XML file.",
    }]);
  }
  return topologyFromJson(value, { file, ...(maxTasks !== undefined ? { maxTasks } : {}) });
}

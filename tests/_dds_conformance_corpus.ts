/**
 * Where DDS's own topology files are, for the conformance suite: they are DDS's (LGPL), not part of this
 * repository. `SHOAL_DDS_CORPUS` names a folder of them or a DDS checkout; otherwise `../shared/dds-topologies`
 * beside this checkout is used (the team's machines and CI have it).
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Folders of a DDS checkout that hold the files the suite reads (a flat corpus has them at its top). */
const DDS_CHECKOUT_DIRS = [
  "",
  "dds-topology-lib/tests",
  "res/tests",
  "dds-tutorials/dds-tutorial1",
  "dds-tutorials/dds-tutorial2",
  "dds-commander/tests",
];

/** A DDS corpus and what is missing from it. */
export interface DdsCorpus {
  /** The folder looked in. */
  dir: string;
  /** Whether the suite must run (in CI, where the corpus is beside the checkout): a missing file fails its test. */
  required: boolean;
  /** Absolute path of DDS file `name`; throws, saying where it looked, when the corpus lacks it. */
  file(name: string): string;
  /** Text of DDS file `name`. */
  text(name: string): string;
  /** Which of `names` the corpus lacks. */
  missing(names: readonly string[]): string[];
}

/** The corpus named by `SHOAL_DDS_CORPUS`, or `../shared/dds-topologies` beside the checkout. */
export function ddsCorpus(): DdsCorpus {
  const named = process.env.SHOAL_DDS_CORPUS;
  const dir = named || fileURLToPath(new URL("../../shared/dds-topologies", import.meta.url));
  const find = (name: string) =>
    DDS_CHECKOUT_DIRS.map((sub) => join(dir, sub, name)).find((p) => existsSync(p) && statSync(p).isFile());
  const file = (name: string) => {
    const path = find(name);
    if (!path) {
      throw new Error(
        `DDS file "${name}" is not in ${dir} (nor in its ${DDS_CHECKOUT_DIRS.slice(1).join(", ")})`,
      );
    }
    return path;
  };
  return {
    dir,
    required: !!process.env.CI,
    file,
    text: (name) => readFileSync(file(name), "utf8"),
    missing: (names) => names.filter((n) => !find(n)),
  };
}

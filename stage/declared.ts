/**
 * Staged names that tasks declare (`$SHOAL_STAGE/<name>` in a command line or env, or a DDS asset whose
 * value is exactly that) are made present before the tasks start: an agent that does not hold the
 * version a lease names pulls it, with the ordinary stage pull, from the agents the commander found
 * holding it (`locateStaged`), after asking one of them for its manifest.
 *
 * @module
 */
import type { MeshNode } from "../mesh/mod.ts";
import { fetchManifest } from "./client.ts";
import { UnheldStageError } from "./errors.ts";
import type { StageService } from "./service.ts";
import type { StageSource } from "./types.ts";

/** A name with `$SHOAL_STAGE/` or `${SHOAL_STAGE}/` before it, anywhere in a text. */
const REF_RE = /\$\{?SHOAL_STAGE\}?\/([A-Za-z0-9_@~#+-][A-Za-z0-9._@~#+-]*)/g;
/** A whole value that is only such a reference (a DDS asset that refers to a staged name). */
const WHOLE_RE = /^\s*\$\{?SHOAL_STAGE\}?\/([A-Za-z0-9_@~#+-][A-Za-z0-9._@~#+-]*)\/?\s*$/;

/** Names a command line or env script refers to as `$SHOAL_STAGE/<name>` or `${SHOAL_STAGE}/<name>`. */
export function stagedNames(text: string): string[] {
  return [...text.matchAll(REF_RE)].map((m) => m[1]!);
}

/** The staged name an asset's value refers to when it is exactly `$SHOAL_STAGE/<name>`, else undefined. */
export function stagedAsset(value: string): string | undefined {
  return WHOLE_RE.exec(value)?.[1];
}

/** Makes declared staged names present on this agent. Create with {@linkcode createStageFetcher}. */
export class StageFetcher {
  readonly #node: MeshNode;
  readonly #stage: StageService;
  /** Pulls under way, by name and manifest: tasks of many leases wait for one. */
  readonly #pulls = new Map<string, Promise<string>>();

  constructor(init: { node: MeshNode; stage: StageService }) {
    this.#node = init.node;
    this.#stage = init.stage;
  }

  /**
   * The local path of `name` when it is here complete in the version `source` names (any version without
   * a source), else undefined: then {@linkcode fetch} it.
   */
  present(name: string, source?: StageSource): string | undefined {
    const here = this.#stage.held(name);
    if (!here?.complete || (source && here.manifest !== source.manifest)) return undefined;
    return this.#stage.resolve(name);
  }

  /**
   * Pulls `name` in the version `source` names from its holders and resolves to its local path. Rejects
   * with {@linkcode UnheldStageError} without a source, or with an `Error` naming the name.
   */
  fetch(name: string, source: StageSource | undefined): Promise<string> {
    const ready = this.present(name, source);
    if (ready !== undefined) return Promise.resolve(ready);
    if (!source || source.holders.length === 0) return Promise.reject(new UnheldStageError(name));
    const key = `${name}\0${source.manifest}`;
    let p = this.#pulls.get(key);
    if (!p) {
      p = this.#pull(name, source).finally(() => this.#pulls.delete(key));
      this.#pulls.set(key, p);
    }
    return p;
  }

  async #pull(name: string, source: StageSource): Promise<string> {
    try {
      const manifest = this.#stage.manifestOf(source.manifest) ??
        await fetchManifest(this.#node, source.holders, source.manifest);
      if (manifest.name !== name) throw new Error(`its holders' manifest is named "${manifest.name}"`);
      const { result } = await this.#stage.pull(manifest, { peers: source.holders, seeds: [] });
      return (await result).path;
    } catch (err) {
      throw new Error(
        `Staged name "${name}" could not be pulled from ${source.holders.length} holder(s): ${
          err instanceof Error ? err.message : String(err)
        }`,
        { cause: err },
      );
    }
  }
}

/** Creates the fetcher of declared staged names over an agent's staging. */
export function createStageFetcher(init: { node: MeshNode; stage: StageService }): StageFetcher {
  return new StageFetcher(init);
}

/**
 * Data staging (STCI): a file or directory placed on many agents, content-addressed in 1 MiB chunks
 * verified by SHA-256, each agent pulling chunks from the peers that already hold them; resumable, cached
 * per agent with least-recently-used eviction, and found by tasks at `$SHOAL_STAGE/<name>`.
 *
 * @example
 * ```ts
 * import { buildManifest, stagePut } from "./mod.ts";
 * const local = await buildManifest("./calib.root", { name: "calib" });
 * const { agents } = await stagePut(node, local, { targets });
 * ```
 *
 * @module
 */
export { Bitmap } from "./bitmap.ts";
export { fetchManifest, findHolders, locateStaged, stageList, stagePut } from "./client.ts";
export type { AgentPut, PutOptions, PutProgress, StagedLocations, StageTarget } from "./client.ts";
export { createStageFetcher, stagedAsset, stagedNames, StageFetcher } from "./declared.ts";
export {
  ChunkCorruptError,
  NoHolderError,
  StageCacheFullError,
  StageInputError,
  UnheldStageError,
  UnknownStageError,
} from "./errors.ts";
export {
  buildManifest,
  checkManifest,
  contentId,
  manifestId,
  manifestOfBytes,
  PieceTable,
} from "./manifest.ts";
export { ChunkServer, chunkServer } from "./chunk_server.ts";
export type { PieceProvider } from "./chunk_server.ts";
export type { LocalManifest } from "./manifest.ts";
export { pull } from "./puller.ts";
export type { PullInit, PullStats } from "./puller.ts";
export { serveSeed } from "./seed.ts";
export type { Seed, SeedStats } from "./seed.ts";
export { DEFAULT_CACHE_MAX, stageDir, StageService, startStageService } from "./service.ts";
export type { StageServiceInit } from "./service.ts";
export {
  CHUNK_PROTOCOL,
  CHUNK_SIZE,
  HAVE_PROTOCOL,
  MANIFEST_PROTOCOL,
  PULL_PROTOCOL,
  STAGE_PROTOCOL,
} from "./types.ts";
export type { Content, Manifest, PullResult, Staged, StageResponse, StageSource } from "./types.ts";

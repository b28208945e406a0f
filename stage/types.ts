/**
 * Contracts of staging: the manifest of a staged name (its file tree and the SHA-256 of every chunk), and
 * the messages of the protocols that move chunks between peers.
 *
 * @module
 */
import * as v from "valibot";

/** Chunk size of new manifests: big enough that a 256 MiB file is 256 requests, small enough to spread. */
export const CHUNK_SIZE = 1024 * 1024;
/** A peer's chunks: ask for one chunk of a content (by piece index of a manifest). */
export const CHUNK_PROTOCOL = "/shoal/stage-chunk/1.0.0";
/** Which pieces of a manifest a peer holds (a bitmap), asked on demand while pulling. */
export const HAVE_PROTOCOL = "/shoal/stage-have/1.0.0";
/** Tell an agent to pull a manifest; it streams progress frames until done. */
export const PULL_PROTOCOL = "/shoal/stage-pull/1.0.0";
/** List or remove an agent's staged names. */
export const STAGE_PROTOCOL = "/shoal/stage/1.0.0";
/** A manifest a peer holds, by ID: how an agent that must pull a declared name learns its file tree. */
export const MANIFEST_PROTOCOL = "/shoal/stage-manifest/1.0.0";

/** Staged names are one file-name component: letters, digits, `. _ - + @ ~ #`, not starting with a dot. */
export const NAME_RE = /^[A-Za-z0-9_@~#+-][A-Za-z0-9._@~#+-]{0,254}$/;

const Hex64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const Int = v.pipe(v.number(), v.integer(), v.minValue(0));
const RelPath = v.pipe(
  v.string(),
  v.maxLength(4096),
  v.check(
    (p) =>
      p !== "" && !p.startsWith("/") && !p.includes("\0") &&
      !p.split("/").some((s) => s === ".." || s === ""),
    "must be a relative path without '..'",
  ),
);

/** One distinct file content: its chunk-list ID, size, mode, and the SHA-256 of each chunk (32 bytes each). */
export const ContentSchema = v.pipe(
  v.object({
    id: Hex64,
    size: Int,
    mode: v.pipe(Int, v.maxValue(0o7777)),
    chunks: v.instance(Uint8Array),
  }),
  v.check((c) => c.chunks.byteLength % 32 === 0, "chunk hashes are 32 bytes each"),
);
/** A content of a manifest. */
export type Content = v.InferOutput<typeof ContentSchema>;

/** What `shoal stage put` places: one file, or a directory tree of files sharing contents. */
export const ManifestSchema = v.object({
  name: v.pipe(v.string(), v.regex(NAME_RE)),
  kind: v.picklist(["file", "dir"]),
  chunkSize: v.pipe(Int, v.minValue(4096), v.maxValue(64 * 1024 * 1024)),
  contents: v.array(ContentSchema),
  /** For `kind: "file"`, one entry with path `"."`. */
  files: v.array(v.object({ path: v.union([v.literal("."), RelPath]), content: Int })),
  /** Directories (empty ones too), parents before children. */
  dirs: v.array(RelPath),
});
/** A manifest. */
export type Manifest = v.InferOutput<typeof ManifestSchema>;

/** Request of {@linkcode CHUNK_PROTOCOL}. */
export const ChunkRequestSchema = v.object({ manifest: Hex64, piece: Int });
/** Response of {@linkcode CHUNK_PROTOCOL}. */
export const ChunkResponseSchema = v.object({ data: v.instance(Uint8Array) });

/** Request of {@linkcode MANIFEST_PROTOCOL}. */
export const ManifestRequestSchema = v.object({ manifest: Hex64 });
/** Response of {@linkcode MANIFEST_PROTOCOL}. */
export const ManifestResponseSchema = v.object({ manifest: ManifestSchema });

/**
 * Where a staged name a task declares can be pulled from: the manifest a commander chose (the most
 * recently staged version) and the agents that hold pieces of it, at least one of them all.
 */
export const StageSourceSchema = v.object({
  name: v.pipe(v.string(), v.regex(NAME_RE)),
  manifest: Hex64,
  holders: v.pipe(v.array(v.pipe(v.string(), v.maxLength(128))), v.maxLength(64)),
});
/** A stage source. */
export type StageSource = v.InferOutput<typeof StageSourceSchema>;

/** Request of {@linkcode HAVE_PROTOCOL}. */
export const HaveRequestSchema = v.object({ manifest: Hex64 });
/** Response of {@linkcode HAVE_PROTOCOL}: a bitmap over the manifest's pieces, or `all`. */
export const HaveResponseSchema = v.object({
  all: v.boolean(),
  bits: v.optional(v.instance(Uint8Array)),
});
/** A have answer. */
export type HaveResponse = v.InferOutput<typeof HaveResponseSchema>;

/** Request of {@linkcode PULL_PROTOCOL}: the manifest and the peers that may hold its pieces. */
export const PullRequestSchema = v.object({
  manifest: ManifestSchema,
  /** Peer IDs to pull from; `seeds` hold everything and are asked only for what no other peer has. */
  peers: v.array(v.pipe(v.string(), v.maxLength(128))),
  seeds: v.array(v.pipe(v.string(), v.maxLength(128))),
});
/** A pull request. */
export type PullRequest = v.InferOutput<typeof PullRequestSchema>;

/** What an agent's pull did, per agent in `shoal stage put --json`. */
export const PullResultSchema = v.object({
  name: v.string(),
  manifest: v.string(),
  bytes: Int,
  /** Bytes fetched over the mesh in this pull (the rest were already here: resumed or cached). */
  fetched: Int,
  /** Bytes fetched per peer ID. */
  from: v.record(v.string(), Int),
  /** Chunks that failed SHA-256 verification (fetched again elsewhere). */
  corrupt: Int,
  ms: Int,
  path: v.string(),
});
/** A pull result. */
export type PullResult = v.InferOutput<typeof PullResultSchema>;

/** Frames an agent streams back on {@linkcode PULL_PROTOCOL}. */
export const PullFrameSchema = v.variant("type", [
  v.object({ type: v.literal("progress"), pieces: Int, of: Int, bytes: Int }),
  v.object({ type: v.literal("done"), result: PullResultSchema }),
  v.object({ type: v.literal("error"), name: v.string(), message: v.string() }),
]);
/** A pull frame. */
export type PullFrame = v.InferOutput<typeof PullFrameSchema>;

/** One staged name on one agent. */
export const StagedSchema = v.object({
  name: v.string(),
  manifest: v.string(),
  kind: v.picklist(["file", "dir"]),
  bytes: Int,
  files: Int,
  /** Pieces held, of all. */
  pieces: Int,
  of: Int,
  complete: v.boolean(),
  stagedAt: v.number(),
  usedAt: v.number(),
});
/** A staged name as `ls` reports it. */
export type Staged = v.InferOutput<typeof StagedSchema>;

/** Request of {@linkcode STAGE_PROTOCOL}. */
export const StageRequestSchema = v.variant("op", [
  v.object({ op: v.literal("ls") }),
  v.object({ op: v.literal("rm"), name: v.pipe(v.string(), v.maxLength(255)) }),
]);
/** Response of {@linkcode STAGE_PROTOCOL}. */
export const StageResponseSchema = v.object({
  agent: v.string(),
  host: v.string(),
  dir: v.string(),
  cacheBytes: Int,
  cacheMax: Int,
  staged: v.array(StagedSchema),
  removed: v.optional(v.boolean()),
});
/** A stage answer. */
export type StageResponse = v.InferOutput<typeof StageResponseSchema>;

/**
 * shoal: spawn and control many tasks tied together by a topology, over a private libp2p mesh, with no
 * central server. This module is the library face of the `shoal` binary.
 *
 * @example
 * ```ts
 * import { createLogger, createSwarmKey, startAgent } from "./mod.ts";
 * await using agent = await startAgent({ dataDir: "/tmp/a", swarmKey: createSwarmKey(), log: createLogger() });
 * ```
 *
 * @module
 */
export * from "./mesh/mod.ts";
export * from "./agent/mod.ts";
export * from "./commander/mod.ts";
export * from "./rms/mod.ts";
export * from "./topology/mod.ts";
export * from "./client/mod.ts";
export * from "./stage/mod.ts";
export * from "./pool/mod.ts";

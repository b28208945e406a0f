/**
 * The mesh: a private libp2p network of shoal peers with gossip, request/response protocols and
 * membership.
 *
 * @example
 * ```ts
 * import { createMeshNode, createSwarmKey, startMembership } from "./mod.ts";
 * await using node = await createMeshNode({ swarmKey: createSwarmKey(), listen: ["/ip4/127.0.0.1/tcp/0"] });
 * await using view = await startMembership({ node, self: () => info });
 * ```
 *
 * @module
 */
export { check, decode, DEFAULT_MAX_MESSAGE_BYTES, encode } from "./codec.ts";
export type { DecodeOptions } from "./codec.ts";
export {
  ListenError,
  MalformedMessageError,
  MessageTooLargeError,
  RemoteError,
  SwarmKeyError,
} from "./errors.ts";
export { Bootstrap, startBootstrap } from "./bootstrap.ts";
export type { BootstrapInit } from "./bootstrap.ts";
export { EventHub } from "./event_hub.ts";
export { loadOrCreateIdentity } from "./identity.ts";
export { MemberTable } from "./member_table.ts";
export type { MemberTableOptions } from "./member_table.ts";
export { Membership, startMembership } from "./membership.ts";
export type { MembershipInit, SelfInfo } from "./membership.ts";
export { createMeshNode, MAX_GOSSIP_BYTES, MeshNode } from "./node.ts";
export type { MeshCounters, MeshNodeInit } from "./node.ts";
export { handleRequests, request } from "./rpc.ts";
export type { HandleOptions, RequestHandler, RequestOptions } from "./rpc.ts";
export { SHOAL_VERSION } from "./version.ts";
export { createSwarmKey, parseSwarmKey, readSwarmKey, writeSwarmKey } from "./swarm_key.ts";
export {
  EVENTS_TOPIC,
  GossipEventSchema,
  HeartbeatSchema,
  MemberSchema,
  MEMBERSHIP_TOPIC,
  VIEW_PROTOCOL,
  ViewSchema,
} from "./types.ts";
export type { GossipEvent, Heartbeat, Member, MembershipEvent, MemberState, View } from "./types.ts";

/**
 * The mesh: a private libp2p network of shoal peers with gossip, request/response protocols and
 * membership.
 *
 * @example
 * ```ts
 * import { createMeshNode, createSwarmKey, startMembership } from "./mod.ts";
 * await using node = await createMeshNode({ swarmKey: createSwarmKey(), listen: ["/ip4/127.0.0.1/tcp/0"] });
 * await using view = await startMembership({ node, self: () => info });
 * view.events.on((e) => console.log(e.type, e.id));
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
export type { ApplyResult } from "./member_table.ts";
export { Membership, startMembership } from "./membership.ts";
export type { MembershipInit, PeerDigests, SelfInfo } from "./membership.ts";
export { REAL_CLOCK, Swim } from "./swim.ts";
export type { SwimClock, SwimCounters, SwimInit, SwimTransport } from "./swim.ts";
export { seededRandom, Simulation } from "./sim.ts";
export type { SimulationInit } from "./sim.ts";
export {
  DEFAULT_TIMING,
  pushPullInterval,
  retransmitLimit,
  suspicionBounds,
  suspicionTimeout,
  swimTiming,
} from "./swim_timing.ts";
export type { SwimTiming } from "./swim_timing.ts";
export { MemberMetaSchema, MemberUpdateSchema, SWIM_PROTOCOL, SwimMessageSchema } from "./swim_types.ts";
export type { MemberMeta, MemberUpdate, SwimMessage } from "./swim_types.ts";
export { createMeshNode, MAX_GOSSIP_BYTES, MeshNode } from "./node.ts";
export type { MeshCounters, MeshNodeInit } from "./node.ts";
export { Direct, startDirect } from "./direct.ts";
export type { DirectInit } from "./direct.ts";
export { handleRequests, request } from "./rpc.ts";
export { Replicated } from "./replicated.ts";
export type { ReplicatedInit } from "./replicated.ts";
export type { HandleOptions, RequestHandler, RequestOptions } from "./rpc.ts";
export { SHOAL_VERSION } from "./version.ts";
export { createSwarmKey, parseSwarmKey, readSwarmKey, writeSwarmKey } from "./swarm_key.ts";
export {
  EVENTS_TOPIC,
  MemberSchema,
  MembershipEventSchema,
  TASK_EVENTS_TOPIC,
  VIEW_PROTOCOL,
  VIEW_WATCH_PROTOCOL,
  ViewSchema,
} from "./types.ts";
export type { Member, MembershipEvent, MemberState, View } from "./types.ts";
export { Coalescer } from "./coalesce.ts";
export { followEveryAgent } from "./follow.ts";
export type { AgentFollower, FollowOptions } from "./follow.ts";
export type { CoalesceClock, CoalescerInit } from "./coalesce.ts";
export { service, startable, startAll, stopAll, StopError } from "./startable.ts";
export type { LifecycleOptions, Service, Startable } from "./startable.ts";

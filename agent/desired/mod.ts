/**
 * Desired state: the replicated topology records and their digest sync, re-placement of a dead
 * agent's tasks (failover: majority, epoch claims, liveness), and reconciling duplicates when a partition heals.
 *
 * @module
 */
export { ClaimTable, serveClaims } from "./claims.ts";
export { DesiredState } from "./desired_state.ts";
export { syncDesiredOnDigest } from "./desired_sync.ts";
export { Failover, startFailover } from "./failover.ts";
export { RECONCILE_RULES, startReconciler } from "./reconcile.ts";
export type { ReconcileRule } from "./reconcile.ts";

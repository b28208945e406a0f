/**
 * Epoch claims: the fence that makes a failover happen once. Before an agent re-places a topology's lost
 * tasks it claims the topology's next epoch from the agents of the record's membership; each agent grants
 * a given epoch of a topology to one claimant only (the first to ask), and never an epoch its record has
 * already reached. A claimant goes on only with grants from a strict majority, so two claimants — two
 * halves of a cut, two agents that each think they are the lowest alive, one agent handling two deaths —
 * cannot both win the same epoch, and leases under the winner's epoch fence the losers' (`slots.ts`).
 *
 * @module
 */
import { handleRequests, type Member, type MeshNode } from "../../mesh/mod.ts";
import type { DesiredState } from "./desired_state.ts";
import { CLAIM_PROTOCOL, ClaimRequestSchema, type ClaimResponse } from "../wire/mod.ts";

/** The highest epoch claim granted per topology, on one agent. */
export class ClaimTable {
  readonly #granted = new Map<string, { epoch: number; claimant: string }>();

  /**
   * Grants `epoch` of a topology to `claimant` unless it is not above `recordEpoch` (the record is already
   * there) or another claimant holds that epoch or a later one. Asking again for what one holds is granted.
   */
  decide(topologyId: string, epoch: number, claimant: string, recordEpoch: number): ClaimResponse {
    const held = this.#granted.get(topologyId);
    const free = epoch > recordEpoch &&
      (!held || epoch > held.epoch || (epoch === held.epoch && claimant === held.claimant));
    if (free) this.#granted.set(topologyId, { epoch, claimant });
    const now = this.#granted.get(topologyId);
    return {
      granted: free,
      epoch: now?.epoch ?? recordEpoch,
      claimant: now?.claimant ?? "",
      recordEpoch,
    };
  }

  /** The claim held for a topology. */
  held(topologyId: string): { epoch: number; claimant: string } | undefined {
    return this.#granted.get(topologyId);
  }

  /** Forgets a topology (stopped). */
  forget(topologyId: string): void {
    this.#granted.delete(topologyId);
  }
}

/** The agents of `lost` that this agent sees alive or suspect (itself included): it disagrees on those. */
export function stillAlive(lost: readonly string[], me: string, members: readonly Member[]): string[] {
  const state = new Map(members.map((m) => [m.id, m.state]));
  return lost.filter((a) => a === me || state.get(a) === "alive" || state.get(a) === "suspect");
}

/**
 * Serves {@linkcode CLAIM_PROTOCOL} from `claims`, judged against this agent's records — and its view: a
 * voter grants only if it too sees every agent the claimant would re-place as dead (right after a heal, a
 * claimant's view still holds deaths the other side never saw).
 */
export async function serveClaims(
  init: { node: MeshNode; desired: DesiredState; claims: ClaimTable; members: () => Member[] },
): Promise<void> {
  await handleRequests(init.node, CLAIM_PROTOCOL, {
    schema: ClaimRequestSchema,
    handler: (req): ClaimResponse => {
      const recordEpoch = init.desired.get(req.topologyId)?.epoch ?? 0;
      const alive = stillAlive(req.lost ?? [], init.node.peerId, init.members());
      if (alive.length > 0) {
        const held = init.claims.held(req.topologyId);
        return {
          granted: false,
          epoch: held?.epoch ?? recordEpoch,
          claimant: held?.claimant ?? "",
          recordEpoch,
          alive,
        };
      }
      return init.claims.decide(req.topologyId, req.epoch, req.claimant, recordEpoch);
    },
  });
}

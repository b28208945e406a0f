/**
 * How many agents the pool asks its RMS for: while queued demand exceeds the free slots, enough pilots to
 * cover the difference, at most `step` at a time, never more than `max` grown agents counting those still
 * pending in the RMS. Pure; `shoal pool grow` runs it on a timer.
 *
 * @module
 */

/** What the decision looks at. */
export interface GrowInput {
  /** Slots wanted by queued topologies. */
  demand: number;
  /** Free slots of alive agents taking leases. */
  free: number;
  /** Slots each new agent brings. */
  slotsPerAgent: number;
  /** Grown agents alive in the mesh. */
  grown: number;
  /** Grown agents submitted but not joined yet. */
  pending: number;
  /** Most grown agents at once. */
  max: number;
  /** Most agents per submission. */
  step: number;
}

/** The decision: how many to submit now, and why. */
export interface GrowDecision {
  submit: number;
  why: string;
}

/** Decides how many agents to submit now. */
export function pilotsToSubmit(i: GrowInput): GrowDecision {
  const deficit = i.demand - i.free - i.pending * i.slotsPerAgent;
  if (i.demand <= i.free) return { submit: 0, why: `demand ${i.demand} fits ${i.free} free slot(s)` };
  if (deficit <= 0) return { submit: 0, why: `${i.pending} pending agent(s) cover the demand` };
  const room = i.max - i.grown - i.pending;
  if (room <= 0) return { submit: 0, why: `at --max ${i.max} (${i.grown} grown, ${i.pending} pending)` };
  const want = Math.ceil(deficit / Math.max(1, i.slotsPerAgent));
  const submit = Math.min(want, room, Math.max(1, i.step));
  return { submit, why: `demand ${i.demand} > ${i.free} free slot(s): ${want} agent(s) wanted` };
}

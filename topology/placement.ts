/**
 * Placement of runtime tasks onto agents' free slots: a pure function, so a commander can plan, explain and
 * retry without side effects.
 *
 * @module
 */
import type {
  AgentSlots,
  ExpandedTopology,
  PlacementAssignment,
  PlacementResult,
  RequirementDecl,
  RuntimeTask,
} from "./types.ts";

/** Options of {@linkcode placeTasks}. */
export interface PlacementOptions {
  /** Abort a long placement. */
  signal?: AbortSignal;
}

/** Tasks that share declaration, and so share every constraint. */
interface Kind {
  label: string;
  isCollection: boolean;
  size: number;
  gpus: number;
  maxPerHost: number;
  requirements: RequirementDecl[];
  units: RuntimeTask[][];
}

/**
 * Assigns runtime tasks to agents following DDS's scheduler: whole collections on one agent, collections
 * first, then tasks with the most requirements. `hostname`, `wnname` and `groupname` are regular expressions
 * that must match the whole agent host, worker-node name or group; `maxinstances` bounds instances of one
 * task or collection per host; shoal adds `gpu` (GPUs per task, from the agent's free GPUs) and `custom`
 * (`label` or `label=regex` on the agent's labels). Agents are filled in the given order.
 *
 * @example
 * ```ts
 * const plan = placeTasks(expanded, [{ id: "a1", host: "n1.gsi.de", freeSlots: 8 }]);
 * if (plan.unplaced.length) console.error(plan.reasons.join("\n"));
 * ```
 */
export function placeTasks(
  expanded: ExpandedTopology,
  agents: readonly AgentSlots[],
  options: PlacementOptions = {},
): PlacementResult {
  const kinds = new Map<string, Kind>();
  const kindOf = (key: string, make: () => Kind) => {
    let k = kinds.get(key);
    if (!k) kinds.set(key, k = make());
    return k;
  };
  for (const c of expanded.collections) {
    kindOf(`c:${c.name}`, () => {
      const requirements = [...new Set([...c.requirements, ...c.tasks.flatMap((t) => t.requirements)])];
      const gpuEach = sumOf(c.requirements, "gpu");
      return {
        label: `collection "${c.name}"`,
        isCollection: true,
        size: c.tasks.length,
        gpus: c.tasks.reduce((s, t) => s + gpuEach + sumOf(t.requirements, "gpu"), 0),
        maxPerHost: minOf(requirements, "maxinstances"),
        requirements,
        units: [],
      };
    }).units.push(c.tasks);
  }
  for (const t of expanded.tasks) {
    if (t.collectionPath !== null) continue;
    kindOf(`t:${t.name}`, () => ({
      label: `task "${t.name}"`,
      isCollection: false,
      size: 1,
      gpus: sumOf(t.requirements, "gpu"),
      maxPerHost: minOf(t.requirements, "maxinstances"),
      requirements: [...t.requirements],
      units: [],
    })).units.push([t]);
  }
  const order = [...kinds.values()].sort((a, b) =>
    Number(b.isCollection) - Number(a.isCollection) || b.requirements.length - a.requirements.length ||
    b.size - a.size
  );

  const free = agents.map((a) => a.freeSlots);
  const gpus = agents.map((a) => a.gpus ?? 0);
  const perHost = new Map<string, number>();
  const assignments: PlacementAssignment[] = [];
  const unplaced: string[] = [];
  const reasons: string[] = [];

  for (const kind of order) {
    options.signal?.throwIfAborted();
    const match = matcher(kind.requirements);
    const eligible: number[] = [];
    agents.forEach((a, i) => match(a) && eligible.push(i));
    const freeAtStart = eligible.reduce((s, i) => s + Math.max(0, free[i] as number), 0);
    const largest = eligible.reduce((m, i) => Math.max(m, free[i] as number), 0);
    const hostKey = (i: number) => `${(agents[i] as AgentSlots).host}\u0000${kind.label}`;
    const fits = (i: number) =>
      (free[i] as number) >= kind.size && (gpus[i] as number) >= kind.gpus &&
      (perHost.get(hostKey(i)) ?? 0) < kind.maxPerHost;
    let cursor = 0;
    let placed = 0;
    for (const unit of kind.units) {
      while (cursor < eligible.length && !fits(eligible[cursor] as number)) cursor++;
      const i = eligible[cursor];
      if (i === undefined) break;
      const agentId = (agents[i] as AgentSlots).id;
      for (const t of unit) assignments.push({ taskPath: t.path, taskId: t.id, agentId });
      free[i] = (free[i] as number) - kind.size;
      gpus[i] = (gpus[i] as number) - kind.gpus;
      if (kind.maxPerHost !== Infinity) perHost.set(hostKey(i), (perHost.get(hostKey(i)) ?? 0) + 1);
      placed++;
    }
    if (placed === kind.units.length) continue;
    for (const unit of kind.units.slice(placed)) for (const t of unit) unplaced.push(t.path);
    reasons.push(explain(kind, placed, freeAtStart, largest, eligible.length, agents.length));
  }
  return { assignments, unplaced, reasons };
}

function explain(
  kind: Kind,
  placed: number,
  free: number,
  largest: number,
  eligible: number,
  all: number,
): string {
  const total = kind.units.length;
  const where = describe(kind.requirements);
  const what = kind.isCollection ? `${kind.label} (${kind.size} tasks each)` : kind.label;
  let text =
    `Cannot place ${total - placed} of ${total} instances of ${what}: needs ${total * kind.size} slots ` +
    `${where}, ${free} free`;
  if (eligible === 0) text += all === 0 ? " (no agents)" : ` (none of ${all} agents matches)`;
  else if (kind.isCollection && largest < kind.size) {
    text += `; a collection must fit on one agent, the largest matching agent has ${largest} free`;
  }
  if (kind.gpus > 0) text += `; each needs ${kind.gpus} GPUs on its agent`;
  if (kind.maxPerHost !== Infinity) text += `; at most ${kind.maxPerHost} per host`;
  return text;
}

function describe(requirements: RequirementDecl[]): string {
  const parts: string[] = [];
  for (const r of requirements) {
    if (r.type === "hostname") parts.push(`hosts matching '${r.value}'`);
    else if (r.type === "wnname") parts.push(`worker nodes matching '${r.value}'`);
    else if (r.type === "groupname") parts.push(`agent groups matching '${r.value}'`);
    else if (r.type === "custom") parts.push(`agents labelled '${r.value}'`);
  }
  return parts.length ? `on ${parts.join(" and ")}` : "on any agent";
}

function matcher(requirements: RequirementDecl[]): (a: AgentSlots) => boolean {
  const tests: ((a: AgentSlots) => boolean)[] = [];
  const full = (v: string) => new RegExp(`^(?:${v})$`);
  for (const r of requirements) {
    if (r.type === "hostname") {
      const re = full(r.value);
      tests.push((a) => re.test(a.host));
    } else if (r.type === "wnname") {
      const re = full(r.value);
      tests.push((a) => re.test(a.wnName ?? ""));
    } else if (r.type === "groupname") {
      const re = full(r.value);
      tests.push((a) => re.test(a.group ?? ""));
    } else if (r.type === "custom") {
      const eq = r.value.indexOf("=");
      const key = eq < 0 ? r.value : r.value.slice(0, eq);
      const re = eq < 0 ? undefined : full(r.value.slice(eq + 1));
      tests.push((a) => {
        const v = a.labels && Object.hasOwn(a.labels, key) ? a.labels[key] : undefined;
        return v !== undefined && (re === undefined || re.test(v));
      });
    }
  }
  return (a) => tests.every((t) => t(a));
}

function sumOf(requirements: readonly RequirementDecl[], type: "gpu"): number {
  return requirements.reduce((s, r) => s + (r.type === type ? Number(r.value) : 0), 0);
}

function minOf(requirements: readonly RequirementDecl[], type: "maxinstances"): number {
  return requirements.reduce((m, r) => (r.type === type ? Math.min(m, Number(r.value)) : m), Infinity);
}

/**
 * A controller's requests to the arbiter of environments ({@linkcode ENV_PROTOCOL}): finding it, reading
 * the records it holds, and claiming or taking an environment (a new epoch: a second controller is refused).
 *
 * @module
 */
import type { CommanderInit } from "../commander/mod.ts";
import { fetchMembers } from "../commander/mod.ts";
import type { TopologyRecord } from "../agent/mod.ts";
import { type Member, request } from "../mesh/mod.ts";
import { EnvConflictError, EnvEventRefusedError, EnvNotFoundError } from "./errors.ts";
import { allowedEvents } from "./fsm.ts";
import { ENV_PROTOCOL, type EnvRequest, type EnvResponse, EnvResponseSchema } from "./protocols.ts";
import { arbiterOf } from "./service.ts";
import type { EnvControllerInit } from "./control_types.ts";
import type { EnvEvent, EnvRecord } from "./types.ts";

/** One request of {@linkcode ENV_PROTOCOL} to `peer`. */
export async function envRequest(init: CommanderInit, peer: string, req: EnvRequest): Promise<EnvResponse> {
  return await request(init.node, peer, ENV_PROTOCOL, req, {
    schema: EnvResponseSchema,
    maxBytes: 64 * 1024 * 1024,
    timeoutMs: 15_000,
    ...(init.signal ? { signal: init.signal } : {}),
  }) as EnvResponse;
}

/**
 * The arbiter, as the `via` agent's view has it: its peer ID when that is the `via` agent, else a multiaddr
 * of it (a light peer may not be connected to it yet, nor know its addresses).
 */
export async function findArbiter(init: CommanderInit): Promise<string> {
  return (await findArbiterIn(init)).arbiter;
}

/** The arbiter and the members it was found among. */
export async function findArbiterIn(init: CommanderInit): Promise<{ arbiter: string; members: Member[] }> {
  const members = await fetchMembers(init);
  return { arbiter: arbiterIn(init, members), members };
}

function arbiterIn(init: CommanderInit, members: Member[]): string {
  const id = arbiterOf(members);
  if (!id || id === init.via) return init.via;
  const addr = members.find((m) => m.id === id)?.addrs.find((a) => !a.includes("/0.0.0.0/"));
  if (!addr) return id;
  return addr.includes("/p2p/") ? addr : `${addr}/p2p/${id}`;
}

/** Every environment record, as `peer` (default: the `via` agent) holds them. */
export async function fetchEnvs(init: CommanderInit, peer = init.via): Promise<EnvRecord[]> {
  return ((await envRequest(init, peer, { op: "list" })).records ?? []) as EnvRecord[];
}

function notFound(id: string, live: string[]): EnvNotFoundError {
  const names = live.map((x) => `"${x}"`).join(", ") || "none";
  return new EnvNotFoundError(
    `No environment "${id}" (environments: ${names}); create one with \`shoal env create FILE\``,
  );
}

/** One environment, as the arbiter holds it (the freshest). */
export async function fetchEnv(init: CommanderInit, id: string, arbiter?: string): Promise<EnvRecord> {
  const all = await fetchEnvs(init, arbiter ?? await findArbiter(init));
  const r = all.find((x) => x.id === id && !x.destroyed);
  if (!r) throw notFound(id, all.filter((x) => !x.destroyed).map((x) => x.id));
  return r;
}

/** Claims `record` at the arbiter, granted when it still has epoch `expectEpoch` and no live controller. */
export async function claim(
  init: EnvControllerInit,
  arbiter: string,
  expectEpoch: number,
  record: EnvRecord,
  allocateRun = false,
): Promise<EnvRecord> {
  const res = await envRequest(init, arbiter, { op: "claim", expectEpoch, allocateRun, record });
  if (!res.ok || !res.record) {
    throw new EnvConflictError(res.reason ?? "The environment was claimed meanwhile");
  }
  return res.record as EnvRecord;
}

/**
 * Takes `id` for `event` in one round trip through the `via` agent, which sends it on to the arbiter (named
 * in the answer, where the outcome goes): the arbiter checks the state allows the event, sets the deadline,
 * allocates a run number for START_ACTIVITY, and sends the topology along when hooks need its paths.
 */
export async function take(
  init: EnvControllerInit,
  id: string,
  event: EnvEvent,
): Promise<{ arbiter: string; record: EnvRecord; topology?: TopologyRecord }> {
  const res = await envRequest(init, init.via, {
    op: "take",
    id,
    event,
    by: init.by,
    peer: init.node.peerId,
  });
  if (res.ok && res.record) {
    return {
      arbiter: res.arbiter ?? init.via,
      record: res.record as EnvRecord,
      ...(res.topology ? { topology: res.topology as TopologyRecord } : {}),
    };
  }
  if (res.live) throw notFound(id, res.live);
  if (res.refused) {
    throw new EnvEventRefusedError(id, res.refused.state, event, allowedEvents(res.refused.state));
  }
  throw new EnvConflictError(res.reason ?? "The environment was claimed meanwhile");
}

/**
 * The CLI's way into the mesh: a light peer (ephemeral identity, no listening) that dials the session's
 * agents and asks them.
 *
 * @module
 */
import { createMeshNode, type MeshNode } from "../mesh/mod.ts";
import { MeshUnreachableError, SessionNotFoundError } from "./errors.ts";
import type { Session } from "./session.ts";

/** A light peer connected to one agent of a session. */
export interface LightPeer extends AsyncDisposable {
  node: MeshNode;
  /** Peer ID of the agent that answered first. */
  agent: string;
}

/** Connects to any agent of `session`; fails with a clear message when none answers. */
export async function connectLightPeer(
  session: Session,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<LightPeer> {
  const addrs = await session.bootstrapAddrs();
  if (addrs.length === 0) {
    throw new SessionNotFoundError(
      session.name,
      `Session "${session.name}" has no running agent; start some with \`shoal up --session ${session.name}\``,
    );
  }
  const node = await createMeshNode({ swarmKey: await session.swarmKey() });
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 5_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const errors: string[] = [];
  try {
    const conn = await Promise.any(addrs.map((a) =>
      node.dial(a, { signal }).catch((err) => {
        errors.push(`${a}: ${err instanceof Error ? err.message : err}`);
        throw err;
      })
    ));
    const agent = conn.remotePeer.toString();
    return { node, agent, [Symbol.asyncDispose]: () => node.stop() };
  } catch (cause) {
    await node.stop();
    throw new MeshUnreachableError(
      `No agent of session "${session.name}" answered (${addrs.length} address(es) tried: ${
        errors[0] ?? ""
      }); ` +
        `check \`shoal info --session ${session.name}\` or start agents with \`shoal up\``,
      { cause },
    );
  }
}

/**
 * The CLI as commander: a light peer in the session's mesh, asking through the agent it reached first.
 *
 * @module
 */
import { hostname, userInfo } from "node:os";
import type { CommanderInit } from "../commander/mod.ts";
import { connectLightPeer, type LightPeer } from "./light_peer.ts";
import type { Session } from "./session.ts";

/** A connected commander; dispose to leave the mesh. */
export interface CliCommander extends AsyncDisposable {
  peer: LightPeer;
  init: CommanderInit;
}

/** Connects to `session` and returns what commander operations need. */
export async function connectCommander(
  session: Session,
  options: { onProgress?: (done: number, total: number) => void } = {},
): Promise<CliCommander> {
  const peer = await connectLightPeer(session);
  return {
    peer,
    init: {
      node: peer.node,
      via: peer.agent,
      sessionId: session.record.id,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    },
    [Symbol.asyncDispose]: () => peer[Symbol.asyncDispose](),
  };
}

/** Who this CLI acts as in environments' histories: `user@host`. */
export function whoAmI(): string {
  let user = "user";
  try {
    user = userInfo().username;
  } catch { /* no passwd entry */ }
  return `${user}@${hostname()}`;
}

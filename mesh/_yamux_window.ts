/**
 * `@chainsafe/libp2p-yamux` answers every data frame it reads with a window-update frame, so each small
 * message (a probe, an ack, a gossip) costs two frames each way, each encrypted twice (Noise and the
 * swarm key's XSalsa20). Go's yamux, which the protocol comes from, updates the window only once half of it
 * has been used (`stream.go`, `sendWindowUpdate`: `if delta < (max/2) && flags == 0 { return }`). This
 * applies that rule to established streams; streams still opening keep the library's behaviour, since
 * their first frame carries the SYN or ACK flag.
 *
 * @module
 */
import { StreamState, YamuxStream } from "@chainsafe/libp2p-yamux/stream";

interface WindowFields {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
}

let applied = false;

/** Installs the rule once per process. */
export function applyYamuxWindowRule(): void {
  if (applied) return;
  applied = true;
  const proto = YamuxStream.prototype as unknown as WindowFields & { sendWindowUpdate(): void };
  const original = proto.sendWindowUpdate;
  proto.sendWindowUpdate = function (this: WindowFields & { sendWindowUpdate(): void }) {
    if (this.state === StreamState.Established && this.recvWindowCapacity > this.recvWindow / 2) return;
    original.call(this);
  };
}

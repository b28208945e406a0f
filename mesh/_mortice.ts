/**
 * libp2p's peer store lock library opens a `BroadcastChannel` named "mortice"; under Deno an open
 * BroadcastChannel keeps the process alive after `node.stop()`. shoal runs one peer per process, so the
 * cross-context channel has nothing to talk to: replace it with an inert one.
 */
let disarmed = false;

/** Makes `new BroadcastChannel("mortice")` return an inert object. Idempotent. */
export function disarmMorticeChannel(): void {
  if (disarmed || typeof globalThis.BroadcastChannel !== "function") return;
  disarmed = true;
  const Original = globalThis.BroadcastChannel;
  class InertChannel extends EventTarget {
    readonly name: string;
    onmessage: ((ev: MessageEvent) => void) | null = null;
    onmessageerror: ((ev: MessageEvent) => void) | null = null;
    constructor(name: string) {
      super();
      this.name = name;
    }
    postMessage(_message: unknown): void {}
    close(): void {}
  }
  globalThis.BroadcastChannel = function (name: string) {
    return name === "mortice" ? new InertChannel(name) : new Original(name);
  } as unknown as typeof BroadcastChannel;
}

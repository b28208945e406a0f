/**
 * Errors raised by the mesh area. Callers compare by class or `.name`.
 *
 * @module
 */

/** A frame or gossip message could not be decoded or did not match its schema. */
export class MalformedMessageError extends Error {
  /** What was being decoded, e.g. a protocol or topic name. */
  readonly what: string;
  constructor(what: string, message: string, options?: ErrorOptions) {
    super(`Malformed message on "${what}": ${message}`, options);
    this.name = "MalformedMessageError";
    this.what = what;
  }
}

/** A message exceeded its size limit. */
export class MessageTooLargeError extends Error {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number, options?: ErrorOptions) {
    super(`Message of ${size} bytes exceeds the limit of ${limit} bytes`, options);
    this.name = "MessageTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

/** The swarm key file is missing or not in the `/key/swarm/psk/1.0.0/` format. */
export class SwarmKeyError extends Error {
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super(`Swarm key "${file}": ${message}`, options);
    this.name = "SwarmKeyError";
    this.file = file;
  }
}

/** A remote peer answered a request with an error. */
export class RemoteError extends Error {
  readonly peer: string;
  readonly remoteName: string;
  constructor(peer: string, remoteName: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RemoteError";
    this.peer = peer;
    this.remoteName = remoteName;
  }
}

/** The mesh could not listen on the requested address (e.g. a busy port). */
export class ListenError extends Error {
  readonly address: string;
  constructor(address: string, message: string, options?: ErrorOptions) {
    super(`Cannot listen on "${address}": ${message}`, options);
    this.name = "ListenError";
    this.address = address;
  }
}

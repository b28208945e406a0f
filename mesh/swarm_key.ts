/**
 * The swarm key of a private mesh: a libp2p pre-shared key in the `/key/swarm/psk/1.0.0/` format.
 *
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import { generateKey } from "@libp2p/pnet";
import { SwarmKeyError } from "./errors.ts";

const HEADER = "/key/swarm/psk/1.0.0/\n/base16/\n";
const KEY_HEX_LENGTH = 64;

/** Returns a new random swarm key, as the bytes of its text form. */
export function createSwarmKey(): Uint8Array {
  const bytes = new Uint8Array(HEADER.length + KEY_HEX_LENGTH);
  generateKey(bytes);
  return bytes;
}

/** Checks the text form of a swarm key and returns it as bytes; `file` names it in errors. */
export function parseSwarmKey(text: string, file = "swarm.key"): Uint8Array {
  const normalized = text.replace(/\r\n/g, "\n").trimEnd();
  if (!normalized.startsWith(HEADER)) {
    throw new SwarmKeyError(
      file,
      'does not start with "/key/swarm/psk/1.0.0/" and "/base16/"; recreate the session or copy the key again',
    );
  }
  const hex = normalized.slice(HEADER.length);
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new SwarmKeyError(file, "the key must be 64 hexadecimal digits; copy the key file again");
  }
  return new TextEncoder().encode(HEADER + hex.toLowerCase());
}

/** Reads and checks a swarm key file. */
export async function readSwarmKey(file: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new SwarmKeyError(file, "cannot be read; run `shoal up` to create a session", { cause });
  }
  return parseSwarmKey(text, file);
}

/** Writes a new swarm key file readable only by its owner, and returns the key. */
export async function writeSwarmKey(file: string): Promise<Uint8Array> {
  const key = createSwarmKey();
  await writeFile(file, key, { mode: 0o600 });
  return key;
}

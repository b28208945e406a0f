/**
 * A peer's stable identity: an Ed25519 key kept in its data dir.
 *
 * @module
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";

const KEY_FILE = "peer.key";

/**
 * Loads the peer key from `dataDir`, creating it on first use, so the peer ID is the same on every start.
 */
export async function loadOrCreateIdentity(dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, KEY_FILE);
  try {
    return privateKeyFromProtobuf(await readFile(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`Peer key "${file}" is unreadable or corrupt; delete it to get a new peer ID`, {
        cause: err,
      });
    }
  }
  const key = await generateKeyPair("Ed25519");
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600 });
  return key;
}

/**
 * Noise's default crypto uses `node:crypto`'s chacha20-poly1305 for payloads of 1200 bytes and more. Bun
 * does not implement that cipher ("Unknown cipher"), which silently kills every larger message. Use the
 * WebAssembly implementation Noise already ships for those runtimes.
 *
 * @module
 */
import { createCipheriv } from "node:crypto";
import { asCrypto, defaultCrypto } from "@chainsafe/libp2p-noise/crypto";

function hasNodeChaCha(): boolean {
  try {
    createCipheriv("chacha20-poly1305", new Uint8Array(32), new Uint8Array(12), { authTagLength: 16 });
    return true;
  } catch {
    return false;
  }
}

/** The crypto implementation Noise should use in this runtime. */
export const noiseCrypto: typeof defaultCrypto = hasNodeChaCha() ? defaultCrypto : {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt: asCrypto.chaCha20Poly1305Encrypt,
  chaCha20Poly1305Decrypt: asCrypto.chaCha20Poly1305Decrypt,
};

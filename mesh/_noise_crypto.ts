/**
 * Noise's default crypto uses `node:crypto`'s chacha20-poly1305 for payloads of 1200 bytes and more. Bun
 * does not implement that cipher ("Unknown cipher"), which silently kills every larger message. Use the
 * WebAssembly implementation Noise already ships for those runtimes.
 *
 * Its HKDF (three per handshake on each side) is JavaScript SHA-256 from `@noble/hashes`: profiled, about 2
 * of the 29 ms of CPU a connection cost both its ends here. `node:crypto`'s `hkdfSync` computes the same
 * extract-and-expand (salt = chaining key, no info, 96 bytes) natively.
 *
 * @module
 */
import { createCipheriv, hkdfSync } from "node:crypto";
import { asCrypto, defaultCrypto } from "@chainsafe/libp2p-noise/crypto";

function hasNodeChaCha(): boolean {
  try {
    createCipheriv("chacha20-poly1305", new Uint8Array(32), new Uint8Array(12), { authTagLength: 16 });
    return true;
  } catch {
    return false;
  }
}

/** Noise's HKDF: three 32-byte keys from the chaining key `ck` and input key material `ikm`. */
export function nativeHkdf(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const okm = new Uint8Array(hkdfSync("sha256", ikm, ck, new Uint8Array(0), 96));
  return [okm.subarray(0, 32), okm.subarray(32, 64), okm.subarray(64, 96)];
}

/** The crypto implementation Noise should use in this runtime. */
export const noiseCrypto: typeof defaultCrypto = {
  ...defaultCrypto,
  getHKDF: nativeHkdf,
  ...(hasNodeChaCha() ? {} : {
    chaCha20Poly1305Encrypt: asCrypto.chaCha20Poly1305Encrypt,
    chaCha20Poly1305Decrypt: asCrypto.chaCha20Poly1305Decrypt,
  }),
};

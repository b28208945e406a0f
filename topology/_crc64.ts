// CRC-64 exactly as DDS computes task IDs: boost::crc_optimal<64, 0x04C11DB7, 0, 0, false, false>
// (polynomial 0x04C11DB7, no reflection, zero init and xor-out), kept in two 32-bit halves for speed.

const T_HI = new Uint32Array(256);
const T_LO = new Uint32Array(256);
for (let b = 0; b < 256; b++) {
  let hi = b << 24;
  let lo = 0;
  for (let k = 0; k < 8; k++) {
    const top = hi & 0x80000000;
    hi = (hi << 1) | (lo >>> 31);
    lo = lo << 1;
    if (top) lo ^= 0x04c11db7;
  }
  T_HI[b] = hi >>> 0;
  T_LO[b] = lo >>> 0;
}

const encoder = new TextEncoder();

/** A running CRC-64; `update` with strings (UTF-8) or bytes, then read `decimal()`. */
export class Crc64 {
  #hi = 0;
  #lo = 0;

  /** Feeds the UTF-8 bytes of `s`. */
  updateString(s: string): this {
    let hi = this.#hi;
    let lo = this.#lo;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        this.#hi = hi;
        this.#lo = lo;
        return this.updateBytes(encoder.encode(s.slice(i)));
      }
      const idx = ((hi >>> 24) ^ c) & 0xff;
      hi = ((hi << 8) | (lo >>> 24)) ^ (T_HI[idx] as number);
      lo = (lo << 8) ^ (T_LO[idx] as number);
    }
    this.#hi = hi;
    this.#lo = lo;
    return this;
  }

  /** Feeds raw bytes. */
  updateBytes(bytes: Uint8Array): this {
    let hi = this.#hi;
    let lo = this.#lo;
    for (let i = 0; i < bytes.length; i++) {
      const idx = ((hi >>> 24) ^ (bytes[i] as number)) & 0xff;
      hi = ((hi << 8) | (lo >>> 24)) ^ (T_HI[idx] as number);
      lo = (lo << 8) ^ (T_LO[idx] as number);
    }
    this.#hi = hi;
    this.#lo = lo;
    return this;
  }

  /** A CRC already in state hi·2³² + lo. */
  static fromState(hi: number, lo: number): Crc64 {
    const c = new Crc64();
    c.#hi = hi;
    c.#lo = lo;
    return c;
  }

  /** The current register as unsigned [high, low] halves. */
  state(): [number, number] {
    return [this.#hi >>> 0, this.#lo >>> 0];
  }

  /** The checksum as an unsigned decimal string, the form DDS prints task IDs in. */
  decimal(): string {
    return toDecimal(this.#hi >>> 0, this.#lo >>> 0);
  }
}

/** CRC-64 of `s` as an unsigned decimal string. */
export function crc64(s: string): string {
  return new Crc64().updateString(s).decimal();
}

/** Formats the unsigned 64-bit value hi·2³² + lo in decimal without BigInt. */
function toDecimal(hi: number, lo: number): string {
  if (hi < 0x200000) return String(hi * 4294967296 + lo);
  const q1 = Math.floor(hi / 1e6);
  const r1 = hi - q1 * 1e6;
  const mid = r1 * 4294967296 + lo;
  const q2 = Math.floor(mid / 1e6);
  const r2 = mid - q2 * 1e6;
  return String(q1 * 4294967296 + q2) + String(r2).padStart(6, "0");
}

/**
 * A precomputed CRC-64 of a fixed suffix, so `crc(prefix + suffix)` costs a pass over the prefix only.
 * CRC with zero init and xor-out is linear: crc(p‖s) = crc(s) ⊕ (crc(p) · x^(8·|s|) mod P), and the
 * multiplication is a fixed linear map, tabulated per byte of the 64-bit state.
 */
export class Crc64Suffix {
  #hi: number;
  #lo: number;
  #tables: Uint32Array;

  constructor(suffix: Uint8Array) {
    const s = new Crc64().updateBytes(suffix);
    [this.#hi, this.#lo] = s.state();
    // Image of each of the 64 state bits after |suffix| zero bytes.
    const basis = new Uint32Array(128);
    const zeros = new Uint8Array(suffix.length);
    for (let bit = 0; bit < 64; bit++) {
      const hi = bit >= 32 ? (1 << (bit - 32)) >>> 0 : 0;
      const lo = bit < 32 ? (1 << bit) >>> 0 : 0;
      const [h, l] = Crc64.fromState(hi, lo).updateBytes(zeros).state();
      basis[2 * bit] = h;
      basis[2 * bit + 1] = l;
    }
    this.#tables = new Uint32Array(8 * 256 * 2);
    for (let j = 0; j < 8; j++) {
      for (let b = 0; b < 256; b++) {
        let h = 0;
        let l = 0;
        for (let k = 0; k < 8; k++) {
          if (b & (1 << k)) {
            h ^= basis[2 * (8 * j + k)] as number;
            l ^= basis[2 * (8 * j + k) + 1] as number;
          }
        }
        this.#tables[2 * (j * 256 + b)] = h >>> 0;
        this.#tables[2 * (j * 256 + b) + 1] = l >>> 0;
      }
    }
  }

  /** CRC-64 of `prefix` followed by the suffix, as an unsigned decimal string. */
  decimalWithPrefix(prefix: string): string {
    let ph = 0;
    let pl = 0;
    for (let i = 0; i < prefix.length; i++) {
      const c = prefix.charCodeAt(i);
      if (c > 0x7f) {
        [ph, pl] = Crc64.fromState(ph, pl).updateString(prefix.slice(i)).state();
        break;
      }
      const idx = ((ph >>> 24) ^ c) & 0xff;
      ph = ((ph << 8) | (pl >>> 24)) ^ (T_HI[idx] as number);
      pl = (pl << 8) ^ (T_LO[idx] as number);
    }
    const t = this.#tables;
    let hi = this.#hi;
    let lo = this.#lo;
    for (let j = 0; j < 8; j++) {
      const b = (j < 4 ? pl >>> (8 * j) : ph >>> (8 * (j - 4))) & 0xff;
      const k = (j << 9) | (b << 1);
      hi ^= t[k] as number;
      lo ^= t[k | 1] as number;
    }
    return toDecimal(hi >>> 0, lo >>> 0);
  }
}

/**
 * A fixed-size set of piece numbers, sent on the wire as its bytes (bit i of byte i >> 3, low bit first).
 *
 * @module
 */

/** A bit set of `size` bits. */
export class Bitmap {
  readonly size: number;
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(size: number, bytes?: Uint8Array) {
    this.size = size;
    this.bytes = new Uint8Array(Math.ceil(size / 8));
    if (bytes) {
      this.bytes.set(bytes.subarray(0, this.bytes.length));
      // Bits past the end are not pieces.
      if (size % 8 && this.bytes.length) this.bytes[this.bytes.length - 1]! &= (1 << (size % 8)) - 1;
      for (const b of this.bytes) this.#count += popcount(b);
    }
  }

  /** A bitmap with every bit set. */
  static full(size: number): Bitmap {
    const b = new Bitmap(size);
    for (let i = 0; i < size; i++) b.set(i);
    return b;
  }

  /** Number of bits set. */
  get count(): number {
    return this.#count;
  }

  /** True when every bit is set. */
  get full(): boolean {
    return this.#count === this.size;
  }

  has(i: number): boolean {
    return i >= 0 && i < this.size && (this.bytes[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** Sets bit `i`; returns false when it was already set. */
  set(i: number): boolean {
    if (i < 0 || i >= this.size) throw new RangeError(`Bit ${i} is outside 0..${this.size - 1}`);
    if (this.has(i)) return false;
    this.bytes[i >> 3]! |= 1 << (i & 7);
    this.#count++;
    return true;
  }

  /** Copies `other`'s bits into this one at bit `offset`. */
  setFrom(other: Bitmap, offset: number): void {
    for (let i = 0; i < other.size; i++) if (other.has(i)) this.set(offset + i);
  }
}

function popcount(b: number): number {
  let n = 0;
  for (; b; b &= b - 1) n++;
  return n;
}

import { crc64, Crc64Suffix } from "./_crc64.ts";
import { assertEquals } from "./_testdata.ts";

/** Bit-by-bit reference of boost::crc_optimal<64, 0x04C11DB7, 0, 0, false, false>. */
function reference(s: string): string {
  let crc = 0n;
  const mask = (1n << 64n) - 1n;
  for (const byte of new TextEncoder().encode(s)) {
    crc ^= BigInt(byte) << 56n;
    for (let k = 0; k < 8; k++) {
      crc = (crc & (1n << 63n)) ? ((crc << 1n) ^ 0x04c11db7n) & mask : (crc << 1n) & mask;
    }
  }
  return crc.toString();
}

Deno.test("crc64: matches DDS's boost CRC-64 parameters bit for bit", () => {
  for (
    const s of ["", "a", "main/task1_0", "main/group1/collection1_3/task1_0", "ünïcödé/✓", "x".repeat(1000)]
  ) {
    assertEquals(crc64(s), reference(s), s);
  }
  for (let i = 0; i < 2000; i++) {
    const s = `main/g${i}/c${i * 7}_${i}/t_${i * 13}`;
    assertEquals(crc64(s), reference(s), s);
  }
});

Deno.test("crc64: a precomputed suffix gives the same CRC as the whole string", () => {
  const enc = new TextEncoder();
  for (const suffix of ["", "x", "|Task|a|run|", "ü".repeat(300), "|Task|" + "z".repeat(5000)]) {
    const s = new Crc64Suffix(enc.encode(suffix));
    for (const prefix of ["", "main/a_0", "main/group1/collection1_3/task1_0"]) {
      assertEquals(
        s.decimalWithPrefix(prefix),
        reference(prefix + suffix),
        `${prefix}+${suffix.slice(0, 9)}`,
      );
    }
  }
});

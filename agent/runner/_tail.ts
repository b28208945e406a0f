/**
 * The last lines of a (log) file, read backwards in blocks so that a large file costs only its tail.
 *
 * @module
 */
import { open } from "node:fs/promises";

const BLOCK = 64 * 1024;

/**
 * The last `lines` lines of `file`, at most `maxBytes` bytes of them (whole lines only, unless a single
 * line is longer). `truncated` is true when fewer lines than asked came back because of `maxBytes`.
 */
export async function tailLines(
  file: string,
  lines: number,
  options: { maxBytes?: number; signal?: AbortSignal } = {},
): Promise<{ text: string; lines: number; truncated: boolean }> {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  if (lines <= 0) return { text: "", lines: 0, truncated: false };
  const fh = await open(file, "r");
  try {
    const size = (await fh.stat()).size;
    let pos = size;
    let buf = Buffer.alloc(0);
    // A final newline ends the last line; it does not start an empty one.
    const newlines = () => {
      let n = 0;
      for (let i = 0; i < buf.length - 1; i++) if (buf[i] === 0x0a) n++;
      return n;
    };
    while (pos > 0 && buf.length < maxBytes && newlines() < lines) {
      options.signal?.throwIfAborted();
      const len = Math.min(BLOCK, pos);
      pos -= len;
      const block = Buffer.alloc(len);
      await fh.read(block, 0, len, pos);
      buf = Buffer.concat([block, buf]);
    }
    if (buf.length === 0) return { text: "", lines: 0, truncated: false };
    let all = buf.toString("utf8").replace(/\n$/, "").split("\n");
    // The first line is cut unless the file's start was reached.
    if (pos > 0) all = all.slice(1);
    let kept = all.slice(-lines);
    let bytes = kept.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    while (kept.length > 1 && bytes > maxBytes) {
      bytes -= Buffer.byteLength(kept[0]!) + 1;
      kept = kept.slice(1);
    }
    const available = pos > 0 ? Infinity : all.length;
    const text = Buffer.from(`${kept.join("\n")}\n`);
    return {
      text: (text.byteLength > maxBytes ? text.subarray(-maxBytes) : text).toString("utf8"),
      lines: kept.length,
      truncated: kept.length < Math.min(lines, available),
    };
  } finally {
    await fh.close();
  }
}

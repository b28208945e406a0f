/**
 * A command's or collective's payload as text, when it is UTF-8.
 *
 * @module
 */

/** The payload decoded as UTF-8, or undefined when it is not valid UTF-8 (then it is shown as base64). */
export function textOf(payload: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    return undefined;
  }
}

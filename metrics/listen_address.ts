/**
 * `host:port` addresses as `--metrics` and `--listen` of `shoal ui` take them.
 *
 * @module
 */

/** Splits `127.0.0.1:9464`, `[::1]:0` or `:9464` (loopback); throws `RangeError` on anything else. */
export function parseHostPort(text: string, what = "address"): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new RangeError(
      `Invalid ${what} "${text}": expected HOST:PORT, e.g. 127.0.0.1:9464 (port 0 picks one)`,
    );
  }
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

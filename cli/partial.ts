/**
 * Results gathered from many agents: when some alive agents did not answer, the result is printed, then a
 * warning naming them, and the exit code says the result is partial.
 *
 * @module
 */
import { ExitCode } from "./errors.ts";

/** An agent that did not answer. */
export interface Silent {
  id: string;
  host?: string;
  reason?: string;
}

/** Warns on stderr about agents that did not answer and sets exit code 6 (partial); no-op when none. */
export function warnPartial(
  silent: readonly (Silent | string)[],
  what = "the result above is partial",
): void {
  if (silent.length === 0) return;
  const names = silent.map((s) =>
    typeof s === "string" ? s : `${s.id}${s.host ? ` (${s.host})` : ""}${s.reason ? `: ${s.reason}` : ""}`
  );
  process.stderr.write(
    `shoal: warning: ${silent.length} agent(s) alive in the view did not answer, so ${what}:\n` +
      names.map((n) => `  ${n}\n`).join(""),
  );
  process.exitCode = ExitCode.partial;
}

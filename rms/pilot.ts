/**
 * Pilots (DIRAC's "Pilots 2.0"): what runs on a node before the agent, as a list of named steps — check
 * the environment, stage the binary, write the config, start the agent, report it — rendered into one
 * bash script. Each plug-in has a default list; a site overrides or extends it in the plug-in config
 * (`pilot.steps`, `pilot.insert`), where a step may be any shell line.
 *
 * The script speaks to the submitter on stdout with lines starting `@@shoal:` (see
 * {@linkcode parsePilotLine}); everything else is the steps' own output.
 *
 * @module
 */
import * as v from "valibot";
import { agentEnvShell } from "./agent_env.ts";

/** One named step: bash run in the pilot's shell, so `export`s carry over to later steps. */
export interface PilotStep {
  name: string;
  run: string;
  /** Where the step comes from: "built-in", a site step file's path, or "inline" (a config's `run`). */
  source?: string;
}

/** A step name: what a site step file is called (`<name>.sh`) and what lists refer to. */
export const StepName = v.pipe(
  v.string(),
  v.regex(
    /^[a-z0-9][a-z0-9_-]{0,63}$/,
    "a step name is 1-64 of a-z 0-9 _ -, starting with a letter or digit",
  ),
);
const CustomStep = v.strictObject({ name: StepName, run: v.pipe(v.string(), v.minLength(1)) });

/** A step list: names of known steps, or `{ name, run }` given in place. */
export const StepListSchema = v.array(v.union([StepName, CustomStep]));

/** Steps inserted into a list, `before` or `after` a named step (default: before `start-agent`). */
export const StepInsertSchema = v.array(v.strictObject({
  name: StepName,
  /** The step's bash; without it, the known step of that name (a site step or a built-in). */
  run: v.optional(v.pipe(v.string(), v.minLength(1))),
  before: v.optional(StepName),
  after: v.optional(StepName),
}));

/** The `pilot` section of a plug-in config. */
export const PilotConfigSchema = v.strictObject({
  /** The whole list, in order: names of known steps, or `{ name, run }` (replacing a step of that name). */
  steps: v.optional(StepListSchema),
  /** Steps added to the resolved (or given) list. */
  insert: v.optional(StepInsertSchema),
});

/** The `pilot` section of a plug-in config. */
export type PilotConfig = v.InferOutput<typeof PilotConfigSchema>;

/** How the agent runs: detached (ssh: the pilot returns) or as the pilot's child (Slurm: the step lives on). */
export type PilotMode = "detach" | "foreground";

const CHECK_ENV = String.raw`
[ "$(uname -s)" = "$SHOAL_EXPECT_OS" ] || { echo "this host runs $(uname -s); the shoal binary is for $SHOAL_EXPECT_OS" >&2; return 1; }
[ "$(uname -m)" = "$SHOAL_EXPECT_ARCH" ] || { echo "this host is $(uname -m); the shoal binary is for $SHOAL_EXPECT_ARCH" >&2; return 1; }
for tool in sha256sum stat mkdir mv cp cut tail tr chmod $( [ "$SHOAL_PILOT_MODE" = detach ] && echo nohup ); do
  command -v "$tool" >/dev/null 2>&1 || { echo "\"$tool\" is missing on $HOSTNAME" >&2; return 1; }
done
mkdir -p "$SHOAL_WORK_DIR/bin" && [ -w "$SHOAL_WORK_DIR" ] || { echo "work dir \"$SHOAL_WORK_DIR\" is not writable" >&2; return 1; }`;

const STAGE_BINARY = String.raw`
have=$(shoal_bin_sha "$SHOAL_BIN")
[ "$have" = "$SHOAL_BIN_SHA256" ] && return 0
if [ -n "$SHOAL_BIN_SOURCE" ] && [ -r "$SHOAL_BIN_SOURCE" ]; then
  tmp="$SHOAL_BIN.part.$$"
  cp "$SHOAL_BIN_SOURCE" "$tmp" && chmod 755 "$tmp" || return 1
  have=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$have" != "$SHOAL_BIN_SHA256" ]; then
    rm -f "$tmp"; echo "\"$SHOAL_BIN_SOURCE\" has sha256 $have, expected $SHOAL_BIN_SHA256" >&2; return 1
  fi
  mv -f "$tmp" "$SHOAL_BIN" && shoal_bin_sha "$SHOAL_BIN" >/dev/null; return 0
fi
echo "no shoal binary with sha256 $SHOAL_BIN_SHA256 at \"$SHOAL_BIN\"$( [ -n "$SHOAL_BIN_SOURCE" ] && echo " and \"$SHOAL_BIN_SOURCE\" is not readable")" >&2
return 1`;

const WRITE_CONFIG = String.raw`
mkdir -p "$SHOAL_DATA_DIR" && chmod 700 "$SHOAL_DATA_DIR" || return 1
(umask 077 && printf '%s\n' "$shoal_swarm_key" >"$SHOAL_DATA_DIR/swarm.key") || return 1
if [ -z "$SHOAL_BOOTSTRAP" ] && [ -n "$SHOAL_FOUNDER_OUTPUT" ]; then
  # Another pilot of this job founds the mesh: bootstrap to the address it reports.
  end=$((SECONDS + SHOAL_START_TIMEOUT))
  until line=$(shoal_find_line "$SHOAL_FOUNDER_OUTPUT" '@@shoal:report '); do
    shoal_find_line "$SHOAL_FOUNDER_OUTPUT" '@@shoal:fail ' >/dev/null && { echo "the founding pilot failed" >&2; return 1; }
    [ $SECONDS -ge $end ] && { echo "the founding pilot did not report within $SHOAL_START_TIMEOUT s" >&2; return 1; }
    sleep 0.2
  done
  SHOAL_BOOTSTRAP=${"$"}{line#*\"addrs\":\[}
  SHOAL_BOOTSTRAP=${"$"}{SHOAL_BOOTSTRAP%%]*}
  SHOAL_BOOTSTRAP=${"$"}{SHOAL_BOOTSTRAP//\"/}
  SHOAL_BOOTSTRAP=${"$"}{SHOAL_BOOTSTRAP//,/ }
fi
for var in SHOAL_SESSION SHOAL_SESSION_ID SHOAL_SLOTS SHOAL_GROUP SHOAL_HOST SHOAL_LISTEN SHOAL_BOOTSTRAP SHOAL_LABELS SHOAL_COMMAND_HANDLER SHOAL_METRICS; do
  printf '%s=%q\n' "$var" "${"$"}{!var}"
done >"$SHOAL_DATA_DIR/pilot.conf"`;

const START_AGENT = String.raw`
set -- agent --data-dir "$SHOAL_DATA_DIR" --swarm-key "$SHOAL_DATA_DIR/swarm.key" --slots "$SHOAL_SLOTS" \
  --listen "$SHOAL_LISTEN" --log-file "$SHOAL_DATA_DIR/agent.log" --quiet --session-id "$SHOAL_SESSION_ID"
for addr in $SHOAL_BOOTSTRAP; do set -- "$@" --bootstrap "$addr"; done
[ -n "$SHOAL_GROUP" ] && set -- "$@" --group "$SHOAL_GROUP"
[ -n "$SHOAL_HOST" ] && set -- "$@" --host "$SHOAL_HOST"
[ -n "$SHOAL_COMMAND_HANDLER" ] && set -- "$@" --command-handler "$SHOAL_COMMAND_HANDLER"
[ -n "$SHOAL_METRICS" ] && set -- "$@" --metrics "$SHOAL_METRICS"
while IFS= read -r label; do [ -n "$label" ] && set -- "$@" --label "$label"; done <<<"$SHOAL_LABELS"
rm -f "$SHOAL_DATA_DIR/agent.json"
${agentEnvShell()}
if [ "$SHOAL_PILOT_MODE" = detach ]; then
  # Its own session, so that it outlives the ssh connection (nohup alone where setsid is missing).
  if command -v setsid >/dev/null 2>&1; then
    setsid nohup "$SHOAL_BIN" "$@" </dev/null >"$SHOAL_DATA_DIR/agent.stderr" 2>&1 &
  else
    nohup "$SHOAL_BIN" "$@" </dev/null >"$SHOAL_DATA_DIR/agent.stderr" 2>&1 &
  fi
  SHOAL_AGENT_PID=$!
else
  # Its own process group (job control on for this one start), so that a signal the RMS sends to the
  # pilot's group (Grid Engine's -notify SIGUSR2 before qdel's SIGKILL) reaches the pilot, which stops
  # the agent with SIGTERM, and not the agent, which would die of it.
  set -m
  "$SHOAL_BIN" "$@" </dev/null >"$SHOAL_DATA_DIR/agent.stderr" 2>&1 &
  SHOAL_AGENT_PID=$!
  set +m
fi
end=$((SECONDS + SHOAL_START_TIMEOUT))
until [[ $(cat "$SHOAL_DATA_DIR/agent.json" 2>/dev/null) == *'"addrs":["'* ]]; do
  if ! kill -0 "$SHOAL_AGENT_PID" 2>/dev/null; then
    echo "the agent exited at start: $(tail -n 3 "$SHOAL_DATA_DIR/agent.stderr" 2>/dev/null)" >&2; return 1
  fi
  if [ $SECONDS -ge $end ]; then
    kill -KILL "$SHOAL_AGENT_PID" 2>/dev/null
    echo "the agent did not listen within $SHOAL_START_TIMEOUT s: $(tail -n 3 "$SHOAL_DATA_DIR/agent.stderr" 2>/dev/null)" >&2
    return 1
  fi
  sleep 0.1
done`;

const REPORT = String.raw`
printf '@@shoal:report {"host":"%s","name":"%s","dataDir":"%s","tasks":%d,"agent":%s}\n' \
  "$(shoal_json "$HOSTNAME")" "$(shoal_json "$SHOAL_AGENT_NAME")" "$(shoal_json "$SHOAL_DATA_DIR")" \
  "${"$"}{SHOAL_PILOTS_IN_JOB:-${"$"}{SLURM_NTASKS:-1}}" "$(tr -d '\n' <"$SHOAL_DATA_DIR/agent.json")"`;

const WAIT_AGENT = String.raw`
# SIGUSR2: Grid Engine's warning before it kills a job (qsub -notify) — the agent stops in time.
trap 'kill -TERM "$SHOAL_AGENT_PID" 2>/dev/null' TERM INT USR2
code=0
while kill -0 "$SHOAL_AGENT_PID" 2>/dev/null; do wait "$SHOAL_AGENT_PID"; code=$?; done
echo "@@shoal:exit $code"`;

/**
 * Bash function `shoal_bin_sha FILE`: the file's SHA-256, cached in `FILE.sha256` as "size mtime sha" so a
 * 100 MB binary is hashed once per change rather than once per agent.
 */
export const BIN_SHA_FN = String.raw`shoal_bin_sha() {
  local st c h
  st=$(stat -c '%s %Y' "$1" 2>/dev/null) || return 0
  c=$(cat "$1.sha256" 2>/dev/null)
  case "$c" in "$st "*) echo "${"$"}{c##* }"; return 0 ;; esac
  h=$(sha256sum "$1" | cut -d' ' -f1) || return 0
  echo "$st $h" >"$1.sha256.$$" && mv -f "$1.sha256.$$" "$1.sha256"
  echo "$h"
}`;

/** The built-in steps, by name. */
export const BUILTIN_STEPS: Readonly<Record<string, string>> = {
  "check-env": CHECK_ENV,
  "stage-binary": STAGE_BINARY,
  "write-config": WRITE_CONFIG,
  "start-agent": START_AGENT,
  "report": REPORT,
  "wait-agent": WAIT_AGENT,
};

/** The built-in step called `name`, if there is one. */
export function builtinStep(name: string): PilotStep | undefined {
  const run = Object.hasOwn(BUILTIN_STEPS, name) ? BUILTIN_STEPS[name] : undefined;
  return run === undefined ? undefined : { name, run, source: "built-in" };
}

/** The default step list of a plug-in's pilots. */
export function defaultPilot(mode: PilotMode): PilotStep[] {
  const names = ["check-env", "stage-binary", "write-config", "start-agent", "report"];
  if (mode === "foreground") names.push("wait-agent");
  return names.map((name) => builtinStep(name)!);
}

/** How {@linkcode resolvePilot} finds steps named in a list. */
export interface StepLookupOptions {
  /** A step by name (default: the built-ins). */
  lookup?: (name: string) => PilotStep | undefined;
  /** Names {@linkcode StepLookupOptions.lookup} knows, for error messages. */
  known?: readonly string[];
}

/** Applies a site's `pilot` config to a default step list. Throws `RangeError` naming a bad step. */
export function resolvePilot(
  defaults: PilotStep[],
  config: PilotConfig | undefined,
  options: StepLookupOptions = {},
): PilotStep[] {
  const lookup = options.lookup ?? builtinStep;
  const known = options.known ?? Object.keys(BUILTIN_STEPS);
  const byName = new Map(defaults.map((s) => [s.name, s]));
  const find = (name: string): PilotStep => {
    const step = byName.get(name) ?? lookup(name);
    if (!step) {
      throw new RangeError(
        `Pilot step "${name}" is neither a known step (${known.join(", ")}) nor given as ` +
          `{ "name": "${name}", "run": "shell line" }`,
      );
    }
    return step;
  };
  let steps = defaults;
  if (config?.steps) {
    steps = config.steps.map((s) => typeof s === "string" ? find(s) : { ...s, source: "inline" });
  }
  steps = [...steps];
  for (const ins of config?.insert ?? []) {
    const anchor = ins.before ?? ins.after ?? "start-agent";
    const at = steps.findIndex((s) => s.name === anchor);
    if (at < 0) {
      throw new RangeError(
        `Pilot step "${ins.name}" is to go next to step "${anchor}", which is not in the list`,
      );
    }
    const step = ins.run ? { name: ins.name, run: ins.run, source: "inline" } : lookup(ins.name);
    if (!step) {
      throw new RangeError(
        `Pilot step "${ins.name}" to insert is neither a known step (${known.join(", ")}) nor given a "run"`,
      );
    }
    steps.splice(ins.after ? at + 1 : at, 0, step);
  }
  const names = steps.map((s) => s.name);
  for (const required of ["start-agent", "report"]) {
    if (!names.includes(required)) {
      throw new RangeError(`A pilot needs a step named "${required}"; the list is: ${names.join(", ")}`);
    }
  }
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new RangeError(`Pilot step "${dup}" appears twice`);
  return steps;
}

/** Quotes `s` for bash (single quotes). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A path for a remote shell: `~/x` becomes `"$HOME"/x`, anything else is quoted. */
export function shellPath(path: string): string {
  if (path === "~") return `"$HOME"`;
  if (path.startsWith("~/")) return `"$HOME"/${shellQuote(path.slice(2))}`;
  return shellQuote(path);
}

/** What a pilot script is made of. */
export interface PilotScript {
  mode: PilotMode;
  steps: PilotStep[];
  /** `SHOAL_*` variables set before the site's environment lines (values quoted here). */
  vars: Record<string, string>;
  /** Variables holding shell expressions (not quoted), e.g. paths under `$HOME`. */
  rawVars?: Record<string, string>;
  /** The swarm key file's text (kept in a shell variable, never exported). */
  swarmKey: string;
  /** The site's environment block (DDS `@bash_begin@ … @bash_end@`), run before the steps. */
  env?: string;
}

/** Renders the bash script of a pilot. */
export function renderPilot(p: PilotScript): string {
  const lines = [
    "#!/usr/bin/env bash",
    "# shoal pilot: generated by the submitter; each step reports on stdout as @@shoal:step/fail/report.",
    "set -u",
    `SHOAL_PILOT_MODE=${p.mode}`,
    ...Object.entries(p.vars).map(([k, val]) => `export ${k}=${shellQuote(val)}`),
    ...Object.entries(p.rawVars ?? {}).map(([k, val]) => `export ${k}=${val}`),
    `shoal_swarm_key=${shellQuote(p.swarmKey.trimEnd())}`,
    BIN_SHA_FN,
    String.raw`shoal_json() { local s=${"$"}{1//\\/\\\\}; printf '%s' "${"$"}{s//\"/\\\"}"; }`,
    "# The first line of file $1 that starts with $2 (exit 1: none yet).",
    String.raw`shoal_find_line() {
  local l
  [ -r "$1" ] || return 1
  while IFS= read -r l || [ -n "$l" ]; do [[ $l == "$2"* ]] && { printf '%s\n' "$l"; return 0; }; done <"$1"
  return 1
}`,
    'shoal_tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-pilot.XXXXXX") || exit 1',
    `trap 'rm -rf "$shoal_tmp"' EXIT`,
    "shoal_step() {",
    '  echo "@@shoal:step $1"',
    '  if "$2" 2>"$shoal_tmp/err"; then cat "$shoal_tmp/err" >&2; return 0; fi',
    "  local why l lines=()",
    String
      .raw`  while IFS= read -r l || [ -n "$l" ]; do [[ $l == *[![:space:]]* ]] && lines+=("${"$"}{l//$'\r'/ }"); done <"$shoal_tmp/err"`,
    '  why="${lines[*]:$(( ${#lines[@]} > 3 ? ${#lines[@]} - 3 : 0 ))}"',
    '  cat "$shoal_tmp/err" >&2',
    '  echo "@@shoal:fail $1 ${why:-the step exited with a non-zero status}"',
    "  exit 1",
    "}",
    "# --- site environment",
    p.env?.trim() ?? "",
    "# --- steps",
  ];
  p.steps.forEach((s, i) => {
    lines.push(`shoal_step_${i}() {`, s.run.trim() || ":", "}");
  });
  p.steps.forEach((s, i) => lines.push(`shoal_step ${shellQuote(s.name)} shoal_step_${i}`));
  return lines.join("\n") + "\n";
}

/** What a pilot reported about its agent. */
export interface PilotReport {
  host: string;
  name: string;
  dataDir: string;
  /** Number of pilots in its Slurm job step (1 over ssh). */
  tasks: number;
  agent: { peerId: string; pid: number; addrs: string[] };
}

/** A message from a pilot on its stdout. */
export type PilotMessage =
  | { type: "step"; step: string }
  | { type: "fail"; step: string; reason: string }
  | { type: "report"; report: PilotReport }
  | { type: "exit"; code: number };

/** Parses one line of a pilot's stdout; undefined for ordinary output. */
export function parsePilotLine(line: string): PilotMessage | undefined {
  const m = /^@@shoal:(step|fail|report|exit) ?(.*)$/.exec(line.trimEnd());
  if (!m) return undefined;
  const rest = m[2] ?? "";
  switch (m[1]) {
    case "step":
      return { type: "step", step: rest };
    case "fail": {
      const i = rest.indexOf(" ");
      return i < 0 ? { type: "fail", step: rest, reason: "failed" } : {
        type: "fail",
        step: rest.slice(0, i),
        reason: rest.slice(i + 1).trim(),
      };
    }
    case "exit":
      return { type: "exit", code: Number(rest) };
    default:
      try {
        const report = JSON.parse(rest) as PilotReport;
        if (typeof report.agent?.peerId !== "string" || !Array.isArray(report.agent.addrs)) return undefined;
        return { type: "report", report };
      } catch {
        return undefined;
      }
  }
}

/** Architecture names as `uname -m` prints them, for this process's platform. */
export function unameArch(arch: string = process.arch): string {
  return ({ x64: "x86_64", arm64: "aarch64", ia32: "i686", arm: "armv7l" } as Record<string, string>)[arch] ??
    arch;
}

/** OS names as `uname -s` prints them. */
export function unameOs(platform: string = process.platform): string {
  return ({ linux: "Linux", darwin: "Darwin", freebsd: "FreeBSD" } as Record<string, string>)[platform] ??
    platform;
}

/**
 * Environment every plug-in gives the agents it starts.
 *
 * Bun's runtime runs an opportunistic garbage collection every second by default; in an idle agent (a heap of
 * about 80 MB) that alone cost 3–4 ms of CPU a second, the largest part of an idle agent's cost. Every 10 s
 * costs a tenth of it and still returns memory between bursts. mimalloc (Bun's allocator) returns freed
 * pages after 10 ms by default, waking its scavenger thread many times a second; after 1 s it is as good
 * for an agent and cheaper. Its scavenger also purged the holes in partly used pages every second: 0.9 ms
 * of CPU a second in an idle agent, a quarter of its cost; every 20 s it costs nothing measurable, and
 * memory freed after a burst (1,000 tasks stopped) is still back within 30 s (same RSS, 84 MB, as before). JavaScriptCore's optimising JIT (DFG, and FTL above it) compiled in the
 * background for the first minute of every agent: about 0.2 s of CPU each, which at 100 agents starting on
 * 2 cores decided whether the mesh formed at all; an agent's work is I/O, crypto in WebAssembly and process
 * spawns, which the baseline JIT runs as well. (`bench/mesh_scale.ts` measures the idle cost and `up`
 * time, `bench/deploy.ts` and `bench/kv_all_to_all.ts` the busy paths.) A value already set in the
 * environment wins.
 *
 * @module
 */

/** Variables set for agents, unless already set. */
export const AGENT_ENV: Readonly<Record<string, string>> = Object.freeze({
  BUN_GC_TIMER_INTERVAL: "10000",
  MIMALLOC_PURGE_DELAY: "1000",
  MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "20000",
  BUN_JSC_useDFGJIT: "0",
});

/** `env` with {@linkcode AGENT_ENV} filled in where unset. */
export function agentEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [k, v] of Object.entries(AGENT_ENV)) out[k] ??= v;
  return out;
}

/** The same as `export` lines for a pilot's shell. */
export function agentEnvShell(): string {
  return Object.entries(AGENT_ENV).map(([k, v]) => `export ${k}="\${${k}:-${v}}"`).join("\n");
}

/**
 * The slots an environment needs beyond DEPLOY's: a hook is a task of the topology and takes a slot while
 * it runs, and `basic` tasks take theirs from START_ACTIVITY on. At worst every basic task and the largest
 * group of hooks that run together (one moment and weight) hold a slot at once, on top of the `direct` and
 * `none` tasks that run from DEPLOY to EXIT.
 *
 * @module
 */
import { parseTrigger } from "./hooks.ts";
import type { EnvTask } from "./types.ts";

/** Slots needed at DEPLOY and, at most, later on top of them. */
export function roomNeeded(
  tasks: Record<string, EnvTask>,
  hooks: readonly { trigger: string }[],
): { deploy: number; later: number } {
  let deploy = 0;
  let basic = 0;
  for (const t of Object.values(tasks)) {
    if (t.mode === "direct" || t.mode === "none") deploy++;
    else if (t.mode === "basic") basic++;
  }
  const groups = new Map<string, number>();
  for (const h of hooks) {
    const t = parseTrigger(h.trigger);
    const key = `${t.moment}\0${t.weight}`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return { deploy, later: basic + Math.max(0, ...groups.values()) };
}

/**
 * What to tell the person creating an environment when the free slots (`free`, as the membership view
 * has them) hold its DEPLOY but not what its hooks and basic tasks take later; undefined when they do.
 */
export function roomWarning(need: { deploy: number; later: number }, free: number): string | undefined {
  if (need.later === 0 || need.deploy + need.later <= free) return undefined;
  const left = Math.max(0, free - need.deploy);
  return `Hooks and basic tasks take up to ${need.later} slot(s) while they run, beyond the ${need.deploy} ` +
    `of DEPLOY, and ${left} will be free: they fail to start (a critical one sends the environment to ` +
    `ERROR) unless slots free up; add agents (\`shoal pool grow\`) or queue it (\`shoal env create --queue\` ` +
    `waits until the whole topology fits)`;
}

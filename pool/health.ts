/**
 * Agent health: an agent whose data disk falls under a free-space floor, or whose load average stays above
 * a ceiling, stops taking leases and says why; it takes leases again once it recovers. Checked on a timer,
 * one `statfs` and one load reading per interval, whatever the mesh size.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import { loadavg } from "node:os";
import { type Clock, REAL_CLOCK } from "./clock.ts";

/** Member label carrying why an agent takes no leases (absent while it does). */
export const HEALTH_LABEL = "shoal.health";

/**
 * Labels with which `shoal up`, `shoal submit` and `shoal pool grow` hand `--min-free-disk` (bytes) and
 * `--max-load` to the agents they start, through any RMS plug-in (as the idle timeout travels).
 */
export const MIN_FREE_DISK_LABEL = "shoal.min-free-disk";
/** See {@linkcode MIN_FREE_DISK_LABEL}. */
export const MAX_LOAD_LABEL = "shoal.max-load";

/** The labels carrying health settings; an unset one is left out. */
export function healthLabels(h: Pick<HealthOptions, "minFreeDiskBytes" | "maxLoad">): Record<string, string> {
  return {
    ...(h.minFreeDiskBytes !== undefined ? { [MIN_FREE_DISK_LABEL]: String(h.minFreeDiskBytes) } : {}),
    ...(h.maxLoad !== undefined ? { [MAX_LOAD_LABEL]: String(h.maxLoad) } : {}),
  };
}

/** Health settings read back from an agent's labels, and the labels that were not numbers (ignored). */
export function healthFromLabels(
  labels: Record<string, string> | undefined,
): { options: HealthOptions; bad: string[] } {
  const options: HealthOptions = {};
  const bad: string[] = [];
  const disk = labels?.[MIN_FREE_DISK_LABEL];
  if (disk !== undefined) {
    const n = Number(disk);
    if (disk.trim() !== "" && Number.isSafeInteger(n) && n >= 0) options.minFreeDiskBytes = n;
    else bad.push(`${MIN_FREE_DISK_LABEL}=${disk}`);
  }
  const load = labels?.[MAX_LOAD_LABEL];
  if (load !== undefined) {
    const n = Number(load);
    if (load.trim() !== "" && Number.isFinite(n) && n >= 0) options.maxLoad = n;
    else bad.push(`${MAX_LOAD_LABEL}=${load}`);
  }
  return { options, bad };
}

/** DDS's default floor of free disk space: 500 MB. */
export const DEFAULT_MIN_FREE_DISK = 500_000_000;

/** Health settings (agent options `--min-free-disk`, `--max-load`). */
export interface HealthOptions {
  /** Fewest free bytes on the data dir's file system (default 500 MB; 0 turns the check off). */
  minFreeDiskBytes?: number;
  /** Highest 1-minute load average (default: no limit). */
  maxLoad?: number;
  /** How many checks in a row the load must stay above the ceiling (default 3). */
  loadChecks?: number;
  /** Period of the checks (default 5 s). */
  intervalMs?: number;
}

/** What the monitor reads, replaceable in tests. */
export interface HealthProbe {
  freeBytes(): number;
  load(): number;
}

/** The real readings of `dir`'s file system and the machine's load. */
export function systemProbe(dir: string): HealthProbe {
  return {
    freeBytes() {
      const s = statfsSync(dir);
      return Number(s.bavail) * Number(s.bsize);
    },
    load: () => loadavg()[0] ?? 0,
  };
}

/** Bytes as people read them. */
export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let x = n;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

/** Parses "500MB", "2G", "1024" (bytes) into bytes; throws RangeError naming the value. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$/i.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a size; write it like 500MB, 2GB or 1048576`);
  const power = " kmgt".indexOf((m[2] || " ").toLowerCase());
  return Math.round(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
}

/** Watches an agent's health; `reason` is undefined while healthy. */
export class HealthMonitor implements Disposable {
  readonly #probe: HealthProbe;
  readonly #clock: Clock;
  readonly #minFree: number;
  readonly #maxLoad: number | undefined;
  readonly #loadChecks: number;
  readonly #onChange: (reason: string | undefined) => void;
  #high = 0;
  #reason: string | undefined;
  #kinds = "";
  #unreadable = false;
  readonly #onUnreadable: (why: string) => void;
  #timer: unknown;

  constructor(
    probe: HealthProbe,
    options: HealthOptions & {
      clock?: Clock;
      onChange?: (reason: string | undefined) => void;
      /** The free space cannot be read (the disk check is then skipped). */
      onUnreadable?: (why: string) => void;
    } = {},
  ) {
    this.#probe = probe;
    this.#clock = options.clock ?? REAL_CLOCK;
    this.#minFree = options.minFreeDiskBytes ?? DEFAULT_MIN_FREE_DISK;
    this.#maxLoad = options.maxLoad;
    this.#loadChecks = Math.max(1, options.loadChecks ?? 3);
    this.#onChange = options.onChange ?? (() => {});
    this.#onUnreadable = options.onUnreadable ?? (() => {});
    this.check();
    this.#timer = this.#clock.setInterval(() => this.check(), options.intervalMs ?? 5_000);
  }

  /** Why the agent takes no leases now (undefined: it does). */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** Reads the probe once and reports a change. */
  check(): void {
    const reasons: string[] = [];
    if (this.#minFree > 0) {
      let free: number | undefined;
      try {
        free = this.#probe.freeBytes();
      } catch (err) {
        // Not knowing is no reason to refuse work: said once, and the check is skipped.
        if (!this.#unreadable) this.#onUnreadable((err as Error).message);
        this.#unreadable = true;
      }
      if (free !== undefined && free < this.#minFree) {
        reasons.push(
          `data disk has ${formatBytes(free)} free, under --min-free-disk ${formatBytes(this.#minFree)}`,
        );
      }
    }
    if (this.#maxLoad !== undefined) {
      const load = this.#probe.load();
      this.#high = load > this.#maxLoad ? this.#high + 1 : 0;
      if (this.#high >= this.#loadChecks) {
        reasons.push(`load ${load.toFixed(2)} has stayed above --max-load ${this.#maxLoad}`);
      }
    }
    // Reported when which checks fail changes, not each time the free bytes move.
    const kinds = reasons.map((r) => r.slice(0, 12)).join("|");
    if (kinds === this.#kinds) return;
    this.#kinds = kinds;
    this.#reason = reasons.length ? reasons.join("; ") : undefined;
    this.#onChange(this.#reason);
  }

  [Symbol.dispose](): void {
    this.#clock.clearInterval(this.#timer);
  }
}

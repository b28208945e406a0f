/**
 * A deterministic simulator for the membership protocol: the real {@linkcode Swim} code on virtual time, over
 * a simulated network with latency, message loss, crashes and partitions. Used by `sim_test.ts` and by
 * `bench/mesh_sim.ts` (to 10,000 members).
 *
 * @module
 */
import { Swim, type SwimClock } from "./swim.ts";
import type { SwimTiming } from "./swim_timing.ts";
import type { SwimMessage } from "./swim_types.ts";
import type { MembershipEvent } from "./types.ts";

/** A seeded PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A binary heap of timed callbacks: the virtual clock. */
class EventQueue {
  #heap: { at: number; seq: number; fn: () => void; dead?: boolean }[] = [];
  #seq = 0;
  now = 0;

  push(at: number, fn: () => void): { dead?: boolean } {
    const e: { at: number; seq: number; fn: () => void; dead?: boolean } = { at, seq: this.#seq++, fn };
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
    return e;
  }

  /** Runs every event up to `until`. */
  run(until: number): void {
    const h = this.#heap;
    while (h.length && h[0]!.at <= until) {
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length) {
        h[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < h.length && less(h[l]!, h[m]!)) m = l;
          if (r < h.length && less(h[r]!, h[m]!)) m = r;
          if (m === i) break;
          [h[m], h[i]] = [h[i]!, h[m]!];
          i = m;
        }
      }
      this.now = top.at;
      if (!top.dead) top.fn();
    }
    this.now = until;
  }
}

function less(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Options for {@linkcode Simulation}. */
export interface SimulationInit {
  seed?: number;
  /** One-way latency, uniform in [min, max] ms (default 0.5–2). */
  latencyMs?: [number, number];
  /** Probability that a message is lost (default 0). */
  loss?: number;
  timing?: Partial<SwimTiming>;
  /** Sees every message sent (delivered or not), and every connection made (`msg` undefined). */
  onSend?: (from: string, to: string, msg: SwimMessage | undefined) => void;
  /** Members share this machine's CPU (many agents on one host); without it, work takes no time. */
  cpu?: SimCpu;
}

/**
 * A shared CPU: every member's work — handling a message, sending one, a timer, a new connection, its
 * start-up, its idle background — runs on `cores` servers in arrival order and takes its cost in ms, so that
 * a machine with more work than cores answers late, as 100 agents on 2 cores do. Costs are measured ones
 * (`bench/mesh_scale.ts`, the connection micro-bench in the closing note of the scale issue).
 */
export interface SimCpu {
  cores: number;
  /** Handling one received membership message. */
  receiveMs: number;
  /** Sending one. */
  sendMs: number;
  /** Running one protocol timer. */
  timerMs: number;
  /** Setting up one connection, on each side (pre-shared key, Noise, identify, gossipsub). */
  linkMs: number;
  /** A member's start-up before it joins. */
  startMs: number;
  /** Background work per member per second (gossipsub heartbeats, other services). */
  idleMsPerS: number;
}

/** One simulated member. */
interface SimNode {
  id: string;
  swim: Swim;
  up: boolean;
  links: Set<string>;
}

/** A simulated mesh of members running the real protocol. */
export class Simulation {
  readonly queue = new EventQueue();
  readonly nodes = new Map<string, SimNode>();
  readonly random: () => number;
  /** Every membership event, with the member that saw it. */
  readonly events: (MembershipEvent & { observer: string })[] = [];
  readonly #init: SimulationInit;
  /** Partition side of each member; members on different sides cannot talk. */
  readonly #side = new Map<string, number>();
  /** Work waiting per member, members waiting for a core, cores in use. */
  readonly #jobs = new Map<string, { costMs: number; fn: () => void; queuedAt: number }[]>();
  readonly #runnable: string[] = [];
  readonly #running = new Set<string>();
  readonly #waiting = new Set<string>();
  #busy = 0;
  /** The longest any piece of work waited for a core so far (virtual ms). */
  maxCpuWaitMs = 0;

  constructor(init: SimulationInit = {}) {
    this.#init = init;
    this.random = seededRandom(init.seed ?? 1);
  }

  /**
   * Runs `fn` as `member`'s work once it had `costMs` of CPU (at once without a CPU model). Each member is
   * one thread: its work runs in order, and runnable members take turns on the cores (round robin, a job at
   * a time), as the kernel's fair scheduler shares a machine between processes.
   */
  #work(member: string, costMs: number, fn: () => void): void {
    if (!this.#init.cpu || costMs <= 0) return fn();
    let jobs = this.#jobs.get(member);
    if (!jobs) this.#jobs.set(member, jobs = []);
    jobs.push({ costMs, fn, queuedAt: this.queue.now });
    this.#ready(member);
    this.#dispatch();
  }

  /** Puts a member with work, neither running nor waiting already, in line for a core. */
  #ready(member: string): void {
    if (this.#running.has(member) || this.#waiting.has(member)) return;
    if ((this.#jobs.get(member)?.length ?? 0) === 0) return;
    this.#waiting.add(member);
    this.#runnable.push(member);
  }

  #dispatch(): void {
    const cores = this.#init.cpu?.cores ?? 0;
    while (this.#busy < cores && this.#runnable.length > 0) {
      const member = this.#runnable.shift()!;
      this.#waiting.delete(member);
      const job = this.#jobs.get(member)!.shift()!;
      this.maxCpuWaitMs = Math.max(this.maxCpuWaitMs, this.queue.now - job.queuedAt);
      this.#busy++;
      this.#running.add(member);
      this.queue.push(this.queue.now + job.costMs, () => {
        this.#busy--;
        this.#running.delete(member);
        job.fn();
        this.#ready(member);
        this.#dispatch();
      });
    }
  }

  /** Members waiting for a core now. */
  get runnable(): number {
    return this.#runnable.length;
  }

  get now(): number {
    return this.queue.now;
  }

  /** Changes the one-way latency from now on (a loaded machine answers late). */
  setLatency(range: [number, number]): void {
    this.#init.latencyMs = range;
  }

  #latency(): number {
    const [lo, hi] = this.#init.latencyMs ?? [0.5, 2];
    return lo + (hi - lo) * this.random();
  }

  #reachable(a: string, b: string): boolean {
    const nb = this.nodes.get(b);
    return !!nb?.up && (this.#side.get(a) ?? 0) === (this.#side.get(b) ?? 0);
  }

  /** Adds a member that joins through `via` (none for the first). */
  add(id: string, via?: string): Swim {
    const q = this.queue;
    const cpu = this.#init.cpu;
    const clock: SwimClock = {
      now: () => q.now,
      setTimeout: (fn, ms) => {
        if (!cpu) return q.push(q.now + ms, fn);
        // The timer is due at its time; its callback runs once the member gets a core.
        const handle: { dead?: boolean } = {};
        q.push(q.now + ms, () => {
          if (!handle.dead) this.#work(id, cpu.timerMs, () => !handle.dead && fn());
        });
        return handle;
      },
      clearTimeout: (h) => {
        if (h) (h as { dead?: boolean }).dead = true;
      },
    };
    const node: SimNode = { id, up: true, links: new Set(), swim: undefined as unknown as Swim };
    const link = (a: SimNode, b: SimNode) => {
      if (a.links.has(b.id)) return;
      this.#init.onSend?.(a.id, b.id, undefined);
      if (cpu) {
        this.#work(a.id, cpu.linkMs, () => {});
        this.#work(b.id, cpu.linkMs, () => {});
      }
      a.links.add(b.id);
      b.links.add(a.id);
      a.swim.linkUp(b.id, true);
      b.swim.linkUp(a.id, false);
    };
    node.swim = new Swim({
      id,
      addrs: [`/sim/${id}`],
      meta: {
        host: id,
        slots: { total: 1, free: 1 },
        version: "sim",
        load: 0,
        startedAt: q.now,
        gpus: 0,
        labels: {},
        group: "",
      },
      clock,
      random: this.random,
      ...(this.#init.timing ? { timing: this.#init.timing } : {}),
      onEvent: (e) => this.events.push({ ...e, observer: id }),
      transport: {
        send: (to, msg: SwimMessage) => {
          this.#init.onSend?.(id, to, msg);
          const target = this.nodes.get(to);
          const connected = node.links.has(to);
          if (!target || !this.#reachable(id, to)) {
            // A refused connection fails fast; a cut one (or a lost message on a link) goes unanswered.
            if (!connected && target && !target.up) {
              q.push(q.now + this.#latency(), () => node.swim.sendFailed(to, msg));
            }
            return;
          }
          if (!connected) link(node, target);
          if (this.random() < (this.#init.loss ?? 0)) return;
          const deliver = () =>
            q.push(q.now + this.#latency(), () => {
              if (!target.up || !node.up || !this.#reachable(id, to)) return;
              this.#work(to, cpu?.receiveMs ?? 0, () => {
                if (target.up && node.up) target.swim.receive(id, msg);
              });
            });
          if (cpu) this.#work(id, cpu.sendMs, deliver);
          else deliver();
        },
        connect: (to) => {
          const target = this.nodes.get(to);
          if (target && this.#reachable(id, to)) q.push(q.now + this.#latency(), () => link(node, target));
          // A refused dial fails at once; a cut one when the dial times out (membership.ts: 5 s).
          else if (target) {
            q.push(q.now + (target.up ? 5_000 : this.#latency()), () => node.swim.linkFailed(to));
          }
        },
        // As membership.ts does: the connection closes 100 ms later, after what was sent on it (an unlink).
        disconnect: (to) => {
          q.push(q.now + 100, () => {
            const target = this.nodes.get(to);
            if (!node.links.delete(to)) return;
            target?.links.delete(id);
            node.swim.linkDown(to);
            target?.swim.linkDown(id);
          });
        },
      },
    });
    this.nodes.set(id, node);
    const begin = () => {
      if (!node.up) return;
      node.swim.start();
      const boot = via ? this.nodes.get(via) : undefined;
      if (boot) link(node, boot);
      if (cpu?.idleMsPerS) {
        // Background work: a second's worth every second, at a random phase.
        const idle = () => {
          if (!node.up) return;
          this.#work(id, cpu.idleMsPerS, () => {});
          q.push(q.now + 1_000, idle);
        };
        q.push(q.now + 1_000 * this.random(), idle);
      }
    };
    if (cpu) this.#work(id, cpu.startMs, begin);
    else begin();
    return node.swim;
  }

  /** Kills a member: its links drop at once (as a killed process's TCP connections do). */
  crash(id: string): void {
    const n = this.nodes.get(id);
    if (!n) return;
    n.up = false;
    n.swim.stop();
    for (const peer of n.links) {
      const p = this.nodes.get(peer);
      p?.links.delete(id);
      p?.swim.linkDown(id);
    }
    n.links.clear();
  }

  /** A member leaves gracefully. */
  leave(id: string): void {
    const n = this.nodes.get(id);
    if (!n) return;
    n.swim.leave();
    this.queue.push(this.now + 5, () => this.crash(id));
  }

  /** Puts members on partition sides; links across sides stop carrying messages (no notice). */
  partition(sides: string[][]): void {
    sides.forEach((ids, i) => ids.forEach((id) => this.#side.set(id, i)));
  }

  /** Heals every partition. */
  heal(): void {
    this.#side.clear();
  }

  /** Runs virtual time forward by `ms`. */
  run(ms: number): void {
    this.queue.run(this.now + ms);
  }

  /** How many up members see `id` in `state`. */
  seenAs(id: string, state: string): number {
    let n = 0;
    for (const node of this.nodes.values()) {
      if (node.up && node.id !== id && node.swim.table.state(id)?.state === state) n++;
    }
    return n;
  }

  /**
   * Adds `n` members, each joining through a random earlier one, `staggerMs` apart, then runs until every
   * member sees all the others (or `timeoutMs` passes). Returns the virtual time it took after the last join.
   */
  form(n: number, options: { staggerMs?: number; timeoutMs?: number; prefix?: string } = {}): number {
    const prefix = options.prefix ?? "n";
    const first = this.nodes.size;
    for (let i = 0; i < n; i++) {
      const k = first + i;
      this.add(`${prefix}${k}`, k ? `${prefix}${Math.floor(this.random() * k)}` : undefined);
      this.run(options.staggerMs ?? 5);
    }
    const start = this.now;
    const total = this.nodes.size;
    while (this.now - start < (options.timeoutMs ?? 120_000)) {
      if (this.converged(total)) break;
      this.run(100);
    }
    return this.now - start;
  }

  /** True when every up member sees `total - 1` others alive or suspect. */
  converged(total = this.upCount()): boolean {
    for (const node of this.nodes.values()) {
      if (node.up && node.swim.table.live.size !== total - 1) return false;
    }
    return true;
  }

  /** Messages sent by all members so far. */
  sent(): number {
    let n = 0;
    for (const node of this.nodes.values()) n += node.swim.counters.sent;
    return n;
  }

  /** Up members. */
  upCount(): number {
    let n = 0;
    for (const node of this.nodes.values()) if (node.up) n++;
    return n;
  }
}

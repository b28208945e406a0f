/**
 * What the parts of a controller share: who it is, and what a transition did.
 *
 * @module
 */
import type { CommanderInit } from "../commander/mod.ts";
import type { HookResult } from "./hook_tasks.ts";
import type { TaskAnswer } from "./send_transition.ts";
import type { EnvRecord, EnvTransition } from "./types.ts";

/** A commander that says who it is (`user@host`), for the history. */
export interface EnvControllerInit extends CommanderInit {
  by: string;
  /** Progress of a phase: `done` of `total`, with what is being done. */
  onPhase?: (what: string, done: number, total: number) => void;
}

/** What a transition did. */
export interface ControlResult {
  record: EnvRecord;
  transition: EnvTransition;
  answers: TaskAnswer[];
  /** Hooks run, in order, with their outcome. */
  hooks: HookResult[];
  /** Failures of non-critical tasks and hooks: reported, the environment went on. */
  warnings: string[];
}

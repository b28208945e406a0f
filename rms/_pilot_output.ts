/**
 * What the pilots of a batch job (Slurm, Grid Engine) said in their output files, `pilot-<job>-<task>.out`
 * and `.err`, in the directory they share with the submitter.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { lastLine } from "./_exec.ts";
import { parsePilotLine, type PilotReport } from "./pilot.ts";

/** What one pilot said so far. */
export interface TaskOutcome {
  report?: PilotReport;
  fail?: { step: string; reason: string };
  /** The step it last began. */
  step?: string;
  exited?: boolean;
  /** The last meaningful line of its stderr file. */
  errTail?: string;
}

/** The outcomes of job `jobId`'s pilots, by task number. */
export function readPilotOutputs(dir: string, jobId: string): Map<number, TaskOutcome> {
  const tasks = new Map<number, TaskOutcome>();
  const re = new RegExp(`^pilot-${jobId}-(\\d+)\\.out$`);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch { /* not yet */ }
  for (const name of names) {
    const m = re.exec(name);
    if (!m) continue;
    const t: TaskOutcome = {};
    for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
      const msg = parsePilotLine(line);
      if (msg?.type === "step") t.step = msg.step;
      else if (msg?.type === "fail") t.fail = msg;
      else if (msg?.type === "report") t.report = msg.report;
      else if (msg?.type === "exit") t.exited = true;
    }
    try {
      const tail = lastLine(readFileSync(join(dir, name.replace(/\.out$/, ".err")), "utf8"));
      if (tail) t.errTail = tail;
    } catch { /* no stderr file */ }
    tasks.set(Number(m[1]), t);
  }
  return tasks;
}

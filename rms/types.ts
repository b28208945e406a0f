/**
 * The contract every resource-management plug-in (localhost, ssh, slurm, …) fulfils: start agents that
 * join a session's mesh, report their jobs, and cancel them.
 *
 * @module
 */
import type { PilotResolution } from "./pilots.ts";

/** How to run the `shoal` binary itself. */
export interface SelfCommand {
  command: string;
  args: string[];
}

/** What a plug-in needs to know about the session its agents join. */
export interface SessionRef {
  name: string;
  id: string;
  /** The session's directory on the submitting host. */
  dir: string;
  swarmKeyFile: string;
  /** Addresses of agents already in the mesh (may be empty: then the first agent founds it). */
  bootstrap: string[];
}

/** A request to start agents. */
export interface SubmitRequest {
  session: SessionRef;
  /** Number of agents. */
  count: number;
  /** Task slots per agent. */
  slots: number;
  /** Group name announced by the agents (DDS `-g`). */
  group?: string;
  /** Labels announced by the agents (for `custom` requirements). */
  labels?: Record<string, string>;
  /**
   * The agents' `--command-handler`: an executable that answers agent commands other than the built-in
   * ones. A path where the agents run (localhost: this machine; ssh and Slurm: the nodes).
   */
  commandHandler?: string;
  /** The agents' `--metrics HOST:PORT` (port 0: each picks a free port). */
  metrics?: string;
  /** The binary to start. */
  self: SelfCommand;
  /** The plug-in's configuration, as its `loadConfig` returned it (ssh hosts, Slurm options, pilot…). */
  config?: RmsConfig;
  /**
   * The site resource the agents run on, for choosing their pilot (`gpu-partition`: the pilots file's
   * `slurm:gpu-partition`); default: the plug-in's (Slurm: the partition, SGE: the queue).
   */
  resource?: string;
  /** A pilots file (step lists per resource type); default: the config's `pilots`. */
  pilots?: string;
  /**
   * Fewest agents that make the submission a success (default: `count` for localhost and Slurm, 1 for
   * ssh). Below it, the agents that did start are stopped again and the submission fails.
   */
  minCount?: number;
  /** Progress and per-agent failures, as they happen. */
  onEvent?: (event: SubmitEvent) => void;
  signal?: AbortSignal;
}

/** A plug-in's configuration: plain JSON-like data that the plug-in validates. */
export type RmsConfig = Record<string, unknown>;

/** Why one agent (or one host's or job's agents) did not start. */
export interface AgentFailure {
  /** Host (ssh: the config's `user@host`; Slurm: the node, when known). */
  host: string;
  /** The RMS's job ID, when there is one. */
  job?: string;
  /** The pilot step that failed, when known. */
  step?: string;
  reason: string;
}

/** What happens during a submission, for progress bars and reports. */
export type SubmitEvent =
  | { type: "binary:staged"; host: string; copied: boolean; ms: number }
  | { type: "job:submitted"; id: string; agents: number }
  | { type: "agent:started"; job: AgentJob }
  | { type: "agent:failed"; failure: AgentFailure };

/** One started agent as the RMS knows it. */
export interface AgentJob {
  /** Plug-in name, e.g. "localhost". */
  rms: string;
  /** The RMS's job ID (a PID, a Slurm job ID, host:pid…). */
  id: string;
  host: string;
  /** The agent's data dir, where the plug-in can see it. */
  dataDir?: string;
  /** The agent's peer ID once known. */
  peerId?: string;
  /** The agent's listen addresses once known. */
  addrs?: string[];
  submittedAt: number;
  /** What the plug-in needs to query or stop the job later (ssh target, Slurm job…); plain JSON. */
  remote?: Record<string, unknown>;
}

/** State of a job as the RMS reports it. */
export interface JobStatus {
  id: string;
  state: "pending" | "running" | "exited" | "unknown";
  detail?: string;
}

/** How a cancelled job ended. */
export interface CancelResult {
  id: string;
  /** "terminated" after SIGTERM; "killed" when the grace period ran out; "gone" when already gone. */
  outcome: "terminated" | "killed" | "gone" | "failed";
  detail?: string;
}

/** Options for {@linkcode RmsPlugin.cancel}. */
export interface CancelOptions {
  /** Time between SIGTERM and SIGKILL (default 10 s). */
  graceMs?: number;
  signal?: AbortSignal;
}

/** Where the pilot's steps come from, for {@linkcode RmsPlugin.pilotSteps}. */
export interface PilotStepsRequest {
  config?: RmsConfig;
  resource?: string;
  pilots?: string;
}

/** A resource-management plug-in. */
export interface RmsPlugin {
  readonly name: string;
  /** The steps its pilots run for a resource, and how they were chosen (plug-ins that run pilots). */
  pilotSteps?(request: PilotStepsRequest): PilotResolution;
  /** The bash script of one of its pilots, as `submit` would run it (`shoal pilot script`). */
  pilotScript?(request: SubmitRequest): Promise<string>;
  /**
   * Reads the plug-in's configuration file (`shoal submit -c FILE`); throws `RmsConfigError` naming the
   * file and line of a mistake.
   */
  loadConfig?(file: string): Promise<RmsConfig>;
  /** Number of agents when the user asks for none (ssh: one per configured host). */
  defaultCount?(config: RmsConfig | undefined): number;
  /**
   * Starts `count` agents; resolves once each is listening (its address known) or has failed. Failed
   * agents are reported through `onEvent`; fewer than `minCount` started rejects with `SubmitError`.
   */
  submit(request: SubmitRequest): Promise<AgentJob[]>;
  /** Reports the state of jobs. */
  status(jobs: AgentJob[], options?: { signal?: AbortSignal }): Promise<JobStatus[]>;
  /** Stops jobs: SIGTERM (or the RMS's cancel), then SIGKILL after the grace period. */
  cancel(jobs: AgentJob[], options?: CancelOptions): Promise<CancelResult[]>;
}

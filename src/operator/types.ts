import type { LeaseOptions } from '../cluster/node-identity.ts';
import type { Routing } from '../cluster/routing.ts';
import type { Database } from '../core/database.ts';
import type { JobDefinition } from '../core/job.ts';
import type { Logger } from '../core/logger.ts';
import type { JobExecution, StepExecution } from '../core/model.ts';
import type { ParamsSchema, ParamValues } from '../core/params.ts';
import type { SubmitItem, SubmitResult } from '../engine/bulk-launch.ts';
import type { ExecutionQuery, JobExplorer } from '../repository/job-repository.ts';

/** A job execution with its step executions. */
export interface ExecutionDetails extends JobExecution {
  /** Its step executions, in start order. */
  steps: StepExecution[];
  /** For an execution this process ran and that failed: the error that failed it. */
  failure?: unknown;
}

/** A cluster member as `nodes` shows it. */
export interface NodeInfo {
  /** The node's name. */
  name: string;
  /** `alive` while its lease holds; `dead` once declared dead; `left` after a graceful shutdown. */
  status: 'alive' | 'dead' | 'left';
  /** Its newest heartbeat, by the database's clock. */
  lastHeartbeat: Date;
  /** The jobs it runs. */
  jobs: string[];
  /** The executions it runs now. */
  running: number[];
  /** The machine it runs on. */
  host: string;
  /** Its process id on that machine. */
  pid: number;
  /** How many executions it runs at once. */
  concurrency: number;
}

/** What {@link createNightshift} takes: the repository, the jobs, and this process's settings. */
export interface NightshiftOptions {
  /** `sqlite:PATH` (default `sqlite:nightshift.db`), `postgres://...`, or an open Database. */
  db?: string | Database;
  /** The jobs this process may launch and run. */
  jobs: readonly JobDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /**
   * Where this process and its executions log (default: JSON lines on stderr at NIGHTSHIFT_LOG_LEVEL, else info).
   * A logger of yours gets Nightshift's lines with the passwords of URLs hidden, at its own level
   * and with its bindings; the instance is not changed, and your own calls to it are not touched.
   */
  logger?: Logger;
  /** Heartbeat and lease of this process while it runs executions. */
  lease?: Partial<LeaseOptions>;
  /** The name this process registers under while running executions. */
  nodeName?: string;
  /** Called after every chunk commit of an execution run by this process. */
  onProgress?: (execution: JobExecution, step: StepExecution) => void;
}

/** A job definition, whatever its parameters. */
export type AnyJob = JobDefinition<ParamsSchema>;
/** The parameters a job takes, all optional, as `run` and `start` accept them. */
export type ParamsOf<J> = J extends JobDefinition<infer S> ? Partial<Record<keyof ParamValues<S>, unknown>> : Record<string, unknown>;

/**
 * The job operator of one process: launches, restarts, stops and abandons executions, and
 * queries the repository. Executions it starts run in this process, which registers itself
 * and keeps a lease while they run.
 */
export interface Nightshift {
  /** The job repository's database (e.g. for a job's own tables). */
  readonly db: Database;
  /** Read-only queries over instances, executions and steps. */
  readonly explorer: JobExplorer;
  /** The jobs this process was given, by name. */
  readonly jobs: ReadonlyMap<string, AnyJob>;
  /** This process's logger. */
  readonly log: Logger;
  /** Runs a new execution of a job in this process and resolves when it has ended. */
  run(job: string, params?: Record<string, unknown>): Promise<ExecutionDetails>;
  /** Starts a new execution and resolves once it exists; `done` resolves when it ends. */
  start(job: string, params?: Record<string, unknown>): Promise<{
    /** The new execution, as created. */
    execution: JobExecution;
    /** Resolves when the execution has ended. */
    done: Promise<ExecutionDetails>;
  }>;
  /** Runs the next instance of a job: its `run.id` is one more than the newest instance's. */
  runNextInstance(job: string, params?: Record<string, unknown>): Promise<ExecutionDetails>;
  /** Restarts the instance of a FAILED or STOPPED execution in this process. */
  restart(executionId: number): Promise<ExecutionDetails>;
  /** Asks a running execution to stop at its next chunk boundary (it ends STOPPED). */
  stop(executionId: number): Promise<JobExecution>;
  /**
   * Marks a stopped, stopping or failed execution ABANDONED: its instance will not run again. A
   * STOPPING execution's owner, if still running it, commits nothing after this. Only the latest
   * execution of its instance can be abandoned (an older one is refused, as restart refuses it).
   */
  abandon(executionId: number): Promise<JobExecution>;
  /**
   * Asks the cluster to run a job: the execution is created at once (STARTING) and a live node
   * that has the job takes it, as routed (any free node by default).
   */
  submit(job: string, params?: Record<string, unknown>, routing?: Routing): Promise<JobExecution>;
  /**
   * Submits many launches at once, for any free node: each item as `submit` would, but the new
   * instances go in with one statement per batch of 5,000. Each item gets its own result, in
   * order: `{ index, executionId }` or `{ index, error }`; an unknown job, bad parameters or a
   * duplicate (within the batch, or an existing instance submit would refuse) fails only that
   * item.
   */
  submitMany(items: readonly SubmitItem[]): Promise<SubmitResult[]>;
  /**
   * Waits until an execution's instance has ended: follows failovers (a failed-over execution is
   * replaced by a new one) and resolves with the last execution.
   */
  waitForEnd(executionId: number, options?: { pollMs?: number; timeoutMs?: number }): Promise<ExecutionDetails>;
  /**
   * Cluster members and what each runs: the newest incarnation of each node name (a node that
   * restarts under its name is a new incarnation), or with `all: true` every incarnation kept
   * (ended ones are kept for the nodes' `nodeRetentionMs`, or until `prune`).
   */
  nodes(options?: { all?: boolean }): Promise<NodeInfo[]>;
  /** One execution with its steps, or undefined. */
  getExecution(id: number): Promise<ExecutionDetails | undefined>;
  /** Executions, newest first; with `steps: true` each comes with its steps (two queries in all). */
  listExecutions(query: ExecutionQuery & { steps: true }): Promise<ExecutionDetails[]>;
  /** Executions, newest first, without their steps. */
  listExecutions(query?: ExecutionQuery & { steps?: boolean }): Promise<JobExecution[]>;
  /** Requests a graceful stop of everything this process runs. */
  stopAll(): void;
  /** Stops what this process runs (STOPPED, restartable), ends its lease and closes the repository. */
  close(): Promise<void>;
}

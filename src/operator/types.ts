import type { LeaseOptions } from '../cluster/node-identity.ts';
import type { Routing } from '../cluster/routing.ts';
import type { Database } from '../core/database.ts';
import type { JobDefinition, ParamsInput, SomeJob } from '../core/job.ts';
import type { Logger } from '../core/logger.ts';
import type { ExecutionSummary, JobExecution, StepExecution } from '../core/model.ts';
import type { ParamsSchema } from '../core/params.ts';
import type { SubmitResult } from '../engine/bulk-launch.ts';
import type { PgTransactionClient } from '../repository/foreign-transaction.ts';
import type { ExecutionQuery, JobExplorer } from '../repository/job-repository.ts';

export type { ExecutionSummary } from '../core/model.ts';

/** A job execution with its step executions. */
export interface ExecutionDetails extends ExecutionSummary {
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
  /** The partitions it runs now (their step execution ids), of its own executions or others'. */
  runningPartitions: {
    /** The partition's step execution id. */
    id: number;
    /** The job execution it is a partition of. */
    executionId: number;
  }[];
  /** The machine it runs on. */
  host: string;
  /** Its process id on that machine. */
  pid: number;
  /** How many executions it runs at once. */
  concurrency: number;
  /** An operator asked it to drain (`nightshift drain`): alive, but it takes no more work until resumed. */
  draining: boolean;
}

export type { SomeJob } from '../core/job.ts';

/**
 * What {@link createNightshift} takes: the repository, the jobs, and this process's settings.
 * `J` is the union of the jobs' definitions, inferred from `jobs`.
 */
export interface NightshiftOptions<J extends SomeJob = SomeJob> {
  /** `sqlite:PATH` (default `sqlite:nightshift.db`), `postgres://...`, or an open Database. */
  db?: string | Database | undefined;
  /** The jobs this process may launch and run. */
  jobs: readonly J[];
  /**
   * Where this process and its executions log (default: JSON lines on stderr at NIGHTSHIFT_LOG_LEVEL, else info).
   * A logger of yours gets Nightshift's lines with the passwords of URLs hidden, at its own level
   * and with its bindings; the instance is not changed, and your own calls to it are not touched.
   */
  logger?: Logger | undefined;
  /** Heartbeat and lease of this process while it runs executions. */
  lease?: { [K in keyof LeaseOptions]?: LeaseOptions[K] | undefined } | undefined;
  /** The name this process registers under while running executions. */
  nodeName?: string | undefined;
  /** Called after every chunk commit of an execution run by this process. */
  onProgress?: ((execution: JobExecution, step: StepExecution) => void) | undefined;
  /**
   * Called once an execution this process runs (`run`, `start`, `runNextInstance`, `restart`) has
   * been created, as it starts. What it throws is logged, and the execution runs on.
   */
  onLaunch?: ((execution: JobExecution) => void) | undefined;
}

/** A job definition, whatever its parameters. */
export type AnyJob = JobDefinition<ParamsSchema>;
/**
 * The parameters a launch of job `J` takes, as `run`, `start` and `submit` accept them: its own,
 * each of its declared type, and the implicit ones (`run.id`, `fireTime`). Which of them must be
 * given, and their validation, is checked when launching.
 */
export type ParamsOf<J> = J extends JobDefinition<infer S, string> ? ParamsInput<S> : Record<string, unknown>;
/** The jobs among `J` that a job named `N` may be (every one whose name is a plain string). */
export type JobNamed<J extends SomeJob, N extends string> = J extends SomeJob ? (N extends J['name'] ? J : never) : never;
/** An item of `submitMany` for one of the jobs `J`: the job's name and its parameters. */
export type SubmitItemOf<J extends SomeJob> = J extends SomeJob
  ? {
      /** The job's name. */
      job: J['name'];
      /** Its parameters, typed and checked as for `submit`. */
      params?: ParamsOf<J> | undefined;
    }
  : never;

/**
 * The job operator of one process: launches, restarts, stops and abandons executions, and
 * queries the repository. Executions it starts run in this process, which registers itself
 * and keeps a lease while they run. `J`, the jobs it was given, types the launches: a job's name
 * must be one of theirs, and its parameters those the job declares, of their types.
 */
export interface Nightshift<J extends SomeJob = SomeJob> {
  /**
   * The job repository's database (e.g. for a job's own tables). `close()` closes it if
   * createNightshift opened it from a URL; a Database you gave stays open, and yours to close.
   */
  readonly db: Database;
  /** Read-only queries over instances, executions and steps. */
  readonly explorer: JobExplorer;
  /** The jobs this process was given, by name. */
  readonly jobs: ReadonlyMap<string, AnyJob>;
  /** This process's logger. */
  readonly log: Logger;
  /** Runs a new execution of a job in this process and resolves when it has ended. */
  run<N extends J['name']>(job: N, params?: ParamsOf<JobNamed<J, N>>): Promise<ExecutionDetails>;
  /** Starts a new execution and resolves once it exists; `done` resolves when it ends. */
  start<N extends J['name']>(job: N, params?: ParamsOf<JobNamed<J, N>>): Promise<{
    /** The new execution, as created. */
    execution: JobExecution;
    /** Resolves when the execution has ended. */
    done: Promise<ExecutionDetails>;
  }>;
  /** Runs the next instance of a job: its `run.id` is one more than the newest instance's. */
  runNextInstance<N extends J['name']>(job: N, params?: ParamsOf<JobNamed<J, N>>): Promise<ExecutionDetails>;
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
  submit<N extends J['name']>(job: N, params?: ParamsOf<JobNamed<J, N>>, routing?: Routing): Promise<JobExecution>;
  /**
   * Submits as `submit` does, inside a PostgreSQL transaction of yours: `client` is a `pg` Client
   * or PoolClient on the repository's database on which you ran `BEGIN`. The execution exists,
   * and the nodes hear of it, only once your transaction commits, and not at all if it rolls
   * back (graphile-worker's `add_job` or pg-boss's `send` with your `db`): an order row and the
   * job that processes it commit together. Nightshift's statements run under a savepoint with the
   * repository's schema on the search path, so a refused submit (it throws, as `submit` would)
   * leaves your transaction usable and its search path as it was. Until you commit, the execution
   * is yours alone: other connections (and `getExecution`) do not see it, and its instance is
   * locked against another launch of the same parameters. PostgreSQL only.
   *
   * @example
   * await client.query('BEGIN');
   * await client.query('INSERT INTO orders (id) VALUES ($1)', [id]);
   * await ns.submitInTransaction(client, 'invoice', { order: id });
   * await client.query('COMMIT');
   */
  submitInTransaction<N extends J['name']>(client: PgTransactionClient, job: N, params?: ParamsOf<JobNamed<J, N>>, routing?: Routing): Promise<JobExecution>;
  /**
   * Submits the next instance of a job to the cluster, as `submit` does: its parameters are the
   * job's `incrementer`'s (by default `run.id` one more than the newest instance's) with `params`
   * over them, as `runNextInstance` computes them.
   */
  submitNextInstance<N extends J['name']>(job: N, params?: ParamsOf<JobNamed<J, N>>, routing?: Routing): Promise<JobExecution>;
  /**
   * Submits many launches at once, for any free node: each item as `submit` would, but the new
   * instances go in with one statement per batch of 5,000. Each item gets its own result, in
   * order: `{ index, executionId }` or `{ index, error }`; an unknown job, bad parameters or a
   * duplicate (within the batch, or an existing instance submit would refuse) fails only that
   * item.
   */
  submitMany(items: readonly SubmitItemOf<J>[]): Promise<SubmitResult[]>;
  /**
   * Waits until an execution's instance has ended: follows failovers (a failed-over execution is
   * replaced by a new one) and resolves with the last execution.
   */
  waitForEnd(executionId: number, options?: { pollMs?: number | undefined; timeoutMs?: number | undefined }): Promise<ExecutionDetails>;
  /**
   * Cluster members and what each runs: the newest incarnation of each node name (a node that
   * restarts under its name is a new incarnation) and every live one (two nodes started with one
   * name are both listed), or with `all: true` every incarnation kept
   * (ended ones are kept for the nodes' `nodeRetentionMs`, or until `prune`).
   */
  nodes(options?: { all?: boolean | undefined }): Promise<NodeInfo[]>;
  /** One execution with its steps, or undefined. */
  getExecution(id: number): Promise<ExecutionDetails | undefined>;
  /** Executions, newest first; with `steps: true` each comes with its steps (two queries in all). */
  listExecutions(query: ExecutionQuery & { steps: true }): Promise<ExecutionDetails[]>;
  /** Executions, newest first, without their steps. */
  listExecutions(query?: ExecutionQuery & { steps?: boolean | undefined }): Promise<ExecutionSummary[]>;
  /**
   * Requests a graceful stop of everything this process runs. It may be called at any time, also
   * while close() waits for those executions (from a signal handler, say) and after it (then it
   * has nothing to stop).
   */
  stopAll(): void;
  /**
   * Closes this operator: ends its lease (the process leaves the cluster) and closes the
   * repository if createNightshift opened it. From the moment it is called, every other method
   * but `stopAll` refuses with a {@link ClosedError} naming it (`explorer`'s methods refuse too). What is under way when it is called still ends before
   * anything is released: the calls already made finish, and the executions this process runs
   * are waited for until they end, as they would end without close (to end them sooner, call
   * `stopAll()` or `stop` before `close()`: they end STOPPED, restartable). A `waitForEnd` under
   * way then looks once more: it resolves if its execution has ended, and rejects with a
   * ClosedError if not. Calling close again returns the first call's promise.
   */
  close(): Promise<void>;
}

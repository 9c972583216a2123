import type { ChunkContext, ItemReader, ItemWriter } from './items.ts';
import type { ExecutionContext, JobExecution, StepExecution } from './model.ts';
import { IMPLICIT_PARAMS, checkDefaults, resolveParams, type ParamsSchema, type ParamValues } from './params.ts';
import { assertExitPattern, mostSpecificMatch, type BatchStatus, type ExitStatus } from './status.ts';
import { ParameterError, UsageError, errorMessage } from './errors.ts';
import type { Database, Tx } from './database.ts';
import type { Logger } from './logger.ts';
import type { ThreadedProcessor } from './threaded-processor.ts';
import type { WorkerLauncher } from './worker-launcher.ts';

/**
 * What every step callback gets: typed parameters, the executions, and their contexts. `X` is
 * the type of a partitioned step's partition (see {@link PartitionedStepDefinition}), for the
 * worker step that runs it.
 */
export interface StepContext<P = Record<string, unknown>, X = unknown> {
  /** The job's parameters, typed by its schema. */
  readonly params: P;
  /** The running job execution. */
  readonly jobExecution: JobExecution;
  /** The running step execution, with its counters so far. */
  readonly stepExecution: StepExecution;
  /** Job-level ExecutionContext: saved with every commit, carried to restarts. */
  readonly jobContext: ExecutionContext;
  /** Step-level ExecutionContext: saved with every commit, restored on restart. */
  readonly stepContext: ExecutionContext;
  /**
   * In a partitioned step's worker: the partition's values, typed as its partitioner returned
   * them (see {@link PartitionedStepSpec.worker}). Whichever node runs the partition reads them
   * back from the job repository, as JSON, the first time as on a retry or restart, so every run
   * sees the same values. The worker's `stepContext` starts as a copy of them and keeps the
   * worker's checkpoints, which a later run of the partition then finds here too, beside the
   * partitioner's values. `undefined` in any other step (typed `unknown` there, as in a worker
   * made by `s.chunk` or `s.tasklet`, which reads the values from its `stepContext`).
   */
  readonly partition: X;
  /** 1 for the instance's first execution, 2 for its first restart, ... */
  readonly executionNumber: number;
  /** Runs SQL outside the chunk transaction against the repository's database (e.g. DDL, readers). */
  readonly db: Database;
  /** Aborted when the step must end now (the execution was lost to another node, or the process is exiting). */
  readonly signal: AbortSignal;
  /**
   * Aborted when the execution is asked to stop (`nightshift stop`, `ns.stop`, SIGTERM) and
   * when `signal` is. Chunk steps stop at their next chunk boundary by themselves; a long tasklet
   * listens to this signal and ends early by throwing its reason (`stopSignal.throwIfAborted()`,
   * or the AbortError of an aborted call it passed the signal to): the step ends STOPPED, its
   * transaction rolled back, and a restart runs it again.
   */
  readonly stopSignal: AbortSignal;
  /** A logger bound to the job, execution and step. */
  readonly log: Logger;
}

/** A tasklet's context adds the transaction its call commits in. */
export interface TaskletContext<P, X = unknown> extends StepContext<P, X> {
  /** The call's transaction in the repository's database; it commits with the step's checkpoint (unless `transactional: false`). */
  readonly tx: Tx;
}

/** A tasklet returns 'CONTINUABLE' to be called again (each call commits), or nothing when done. */
export type RepeatStatus = 'CONTINUABLE' | 'FINISHED';

/**
 * What a tasklet call returns: `'CONTINUABLE'` to be called again, nothing (or `'FINISHED'`)
 * when done, or an ExitStatus when done with that exit status (e.g. `exitStatus('NOOP')`), which
 * the step ends with and the flow's transitions see.
 */
export type TaskletResult = RepeatStatus | ExitStatus | void;

/** Selects errors: an Error subclass, or a predicate. */
export type ErrorMatcher = (new (...args: never[]) => Error) | ((error: unknown) => boolean);

/** The part of a chunk step an item failed in: reading it, processing it, or writing its chunk. */
export type Phase = 'read' | 'process' | 'write';

/** What a skip policy's `policy` function is asked about one error: see {@link SkipPolicy}. */
export interface SkipQuery {
  /** What was thrown. */
  readonly error: unknown;
  /** Where it was thrown. */
  readonly phase: Phase;
  /**
   * Skips so far in this step execution, this one not included: those committed, and those of
   * the chunks read but not committed yet (as Spring Batch's `shouldSkip(t, skipCount)` sees it).
   */
  readonly skipCount: number;
  /** The item, for process and write errors (a read error has none). */
  readonly item?: unknown;
}

/** Which errors a skip policy considers at all (see {@link SkipPolicy}). */
export interface SkipMatchers {
  /**
   * Errors that may be skipped; default: any error but a UsageError, which no policy skips (it
   * says the job, its setup or its input must be fixed: an `UnreadableFileError`, say).
   */
  on?: ErrorMatcher[];
  /** Errors that are never skipped, even if `on` matches. */
  never?: ErrorMatcher[];
}

/**
 * Which failed items are skipped. An error is skipped when `on` matches it and `never` does not,
 * `policy` (if given) returns true, and the skip stays within `limit`. Give a `limit`, a
 * `policy`, or both; with a policy alone there is no limit but the policy's own.
 *
 * @example
 * skip: { on: [BadRecordError], limit: 100 }
 * skip: { on: [LookupError], policy: ({ skipCount, phase }) => phase === 'process' && skipCount < 10 }
 */
export type SkipPolicy<P = Record<string, unknown>, X = unknown> = SkipMatchers &
  (
    | {
        /** Total skips allowed in the step (read + process + write); exceeding it fails the step. */
        limit: number | ((ctx: StepContext<P, X>) => number);
        /** See {@link SkipDecider}. */
        policy?: SkipDecider;
      }
    | {
        /** Total skips allowed in the step (read + process + write); exceeding it fails the step. */
        limit?: number | ((ctx: StepContext<P, X>) => number);
        /** See {@link SkipDecider}. */
        policy: SkipDecider;
      }
  );

/**
 * Decides whether an error that `on`/`never` allow is skipped, seeing how many items the step
 * skipped so far, like Spring Batch's SkipPolicy. Returning false lets the error take its
 * course (it fails the step, unless `noRollback` lists it). Called once per failing item, in the
 * chunk step's own flow: it must answer at once (no promise), and an error it throws fails the
 * step.
 */
export type SkipDecider = (query: SkipQuery) => boolean;

/** A retry about to happen, or retries given up: what a {@link RetryListener} is told. */
export interface RetryEvent {
  /** A process retry is of one item; a write retry, of the whole chunk. */
  readonly phase: 'process' | 'write';
  /** The error of the attempt that failed. */
  readonly error: unknown;
  /** The attempt that failed: 1 for the first (so a retry is attempt number `attempt + 1`). */
  readonly attempt: number;
  /** The item, when a process attempt failed. */
  readonly item?: unknown;
  /** The chunk's items (the processor's outputs), when a write attempt failed. */
  readonly items?: readonly unknown[];
}

/**
 * Told about retries, like Spring Batch's RetryListener. A listener may be async (the retry
 * waits for it); an error it throws fails the step.
 */
export interface RetryListener {
  /** Before each retry (and its backoff), with the error of the attempt that failed. */
  onRetry?(event: RetryEvent): void | Promise<void>;
  /** When an error the policy retries fails the last attempt `limit` allows; it is then skipped or fails the step. */
  onRetryExhausted?(event: RetryEvent): void | Promise<void>;
}

/**
 * Which failed items (process) or chunks (write) are tried again before being skipped or failing
 * the step, and how long to wait in between. Read errors are not retried.
 *
 * @example
 * retry: { on: [TimeoutError], limit: 3, backoff: { initialMs: 100, multiplier: 2, maxMs: 2000 } }
 */
export interface RetryPolicy {
  /** Errors that are retried; default: none. */
  on: ErrorMatcher[];
  /** Total attempts per item (process) or per chunk (write), including the first. */
  limit: number;
  /** Backoff before each retry: initialMs × multiplier^(n-1), capped at maxMs. */
  backoff?: {
    /** Wait before the first retry. */
    initialMs: number;
    /** Factor applied to the wait before each further retry (default 2). */
    multiplier?: number;
    /** Longest wait. */
    maxMs?: number;
  };
  /**
   * Told before each retry and when the retries are exhausted.
   *
   * @example
   * listeners: [{ onRetry: ({ error, attempt, item }) => log.warn({ err: error, item }, `attempt ${attempt} failed; retrying`) }]
   */
  listeners?: RetryListener[];
}

/**
 * A skipped item, as seen by skip listeners: by `phase`, a read skip has no item (the reader
 * failed before there was one), a process skip has the item read (`I`), and a write skip the
 * item processed (`O`), typed as the step's.
 */
export type SkippedItem<I = unknown, O = unknown> = ReadSkip | SkippedIn<'process', I> | SkippedIn<'write', O>;

/** A read skip (see {@link SkippedItem}): the reader failed before there was an item. */
export interface ReadSkip {
  /** Where the item failed. */
  readonly phase: 'read';
  /** What was thrown. */
  readonly error: unknown;
  /** None. */
  readonly item?: undefined;
}

/** An item skipped in processing or writing (see {@link SkippedItem}). */
export interface SkippedIn<Ph extends 'process' | 'write', T> {
  /** Where the item failed. */
  readonly phase: Ph;
  /** What was thrown. */
  readonly error: unknown;
  /** The item: the one read for a process skip, the one processed for a write skip. */
  readonly item: T;
}

/**
 * Told when a job execution begins and ends (`defineJob({ listeners })`), like Spring Batch's
 * JobExecutionListener. Several listeners are called in the order given.
 */
export interface JobListener<P = Record<string, unknown>> {
  /** Before the first step runs (on a restart too). An error it throws fails the execution. */
  beforeJob?(execution: JobExecution, params: P): void | Promise<void>;
  /**
   * After the last step, with the execution's `status` and `exitStatus` set, before its end is
   * recorded: an error it throws fails the execution (and a restart calls it again).
   */
  afterJob?(execution: JobExecution, params: P): void | Promise<void>;
}

/**
 * Told when a step execution begins and ends (the `listeners` of any step), like Spring Batch's
 * StepExecutionListener. Several listeners are called in the order given, `afterStep` too.
 * Without type arguments (a listener written once for many jobs), `params` is a plain record.
 */
export interface StepListener<P = Record<string, unknown>, X = unknown> {
  /** Before the step opens its reader and writer. An error it throws fails the step. */
  beforeStep?(ctx: StepContext<P, X>): void | Promise<void>;
  /**
   * May return a new ExitStatus for the step; with an empty description, the step's description
   * (a failure's reason) is kept, so a listener cannot clear it. The step's status stays what it was, but transitions and
   * `exitCodes` follow the code returned, also for a step that FAILED: check
   * `ctx.stepExecution.status` before replacing a failure's code, unless the flow is meant to
   * route on it (`on: { MY_CODE: 'cleanup' }` goes on, and the job can then complete). If it
   * throws, the error is logged and the step keeps its status and the exit status it had before
   * its afterStep listeners ran (as in Spring Batch); the listeners after it are not called.
   */
  afterStep?(ctx: StepContext<P, X>): ExitStatus | void | Promise<ExitStatus | void>;
}

/**
 * Told what a chunk step does with each chunk and item (`chunkListeners`): Spring Batch's
 * ChunkListener, ItemReadListener, ItemProcessListener, ItemWriteListener and SkipListener in
 * one. Several listeners are called in the order given. Read and process methods are
 * synchronous; the others may return a promise, which is awaited. An error thrown by a
 * listener fails the step, except in `onChunkError` (logged). Without type arguments (a listener
 * written once for many steps), `params` is a plain record and the items are `unknown`.
 */
export interface ChunkListener<P = Record<string, unknown>, I = unknown, O = unknown, X = unknown> {
  /** Before a chunk's first item is read. */
  beforeChunk?(ctx: StepContext<P, X>): void | Promise<void>;
  /** After the chunk's transaction committed (also for the last chunk, which may be empty). */
  afterChunk?(ctx: StepContext<P, X>): void | Promise<void>;
  /**
   * Told of each rollback the step's rollback counter counts, as in Spring Batch: a chunk that
   * fails while it is read, processed or written, each attempt at writing it that fails, and
   * each item whose own transaction rolls back while the chunk is written item by item.
   */
  onChunkError?(ctx: StepContext<P, X>, error: unknown): void | Promise<void>;
  /** Before each call of the reader, the one that finds the end of input included. */
  beforeRead?(): void;
  /** After the reader returned an item. */
  afterRead?(item: I): void;
  /** When the reader threw (before the error is retried, skipped or fails the step). */
  onReadError?(error: unknown): void;
  /** Before the processor is called with an item (again before each retry). */
  beforeProcess?(item: I): void;
  /** After the processor returned; `result` is `undefined` when it filtered the item. */
  afterProcess?(item: I, result: O | undefined): void;
  /** When the processor threw for an item (each failed attempt). */
  onProcessError?(item: I, error: unknown): void;
  /** Before the writer is called, inside the chunk's transaction (for each attempt, and each item written item by item). */
  beforeWrite?(items: O[]): void | Promise<void>;
  /** After the writer returned, inside the chunk's transaction, before its commit. */
  afterWrite?(items: O[]): void | Promise<void>;
  /** When the writer threw; the transaction then rolls back. */
  onWriteError?(items: O[], error: unknown): void | Promise<void>;
  /** Called inside the chunk's transaction, so what it records commits with the chunk. */
  onSkip?(skip: SkippedItem<I, O>, chunk: ChunkContext): void | Promise<void>;
}

/** Where a transition goes: another element by name, or the end of the job. */
export type TransitionTarget =
  | string
  | {
      /** End the job COMPLETED with this exit code. */
      end: string;
    }
  | {
      /** End the job FAILED with this exit code. */
      fail: string;
    }
  | {
      /** Stop the job (STOPPED); a restart resumes at the element of this name. */
      stop: string;
    };

/** Transitions on exit-status patterns (`*`, `?`, exact codes); the most specific matching pattern wins, by Spring Batch's rule (see compareExitPatterns). */
export type Transitions = Record<string, TransitionTarget>;

interface ElementBase {
  /** The element's name, unique in the job: letters, digits and `_ . : -`. */
  readonly name: string;
  /**
   * Where to go next by exit code; without it: next element on success, fail the job on FAILED.
   * An exit code that no pattern matches: COMPLETED goes on to the next element (or ends the
   * job COMPLETED when this is the last), any other code fails the job.
   */
  readonly on?: Transitions;
}

interface StepBase<P, X = unknown> extends ElementBase {
  /** Run the step again on a restart even if it COMPLETED in an earlier execution. */
  readonly allowStartIfComplete?: boolean;
  /** How many times this step may be started within one instance (0: never). A step at its limit fails the job. */
  readonly startLimit?: number;
  /** Told when the step begins and ends (see {@link StepListener}). */
  readonly listeners?: StepListener<P, X>[];
}

/**
 * A step that calls one function (`s.tasklet`), like Spring Batch's TaskletStep: each call runs
 * in a transaction that commits with the step's checkpoint, and a call returning `'CONTINUABLE'`
 * is followed by another.
 */
export interface TaskletStepDefinition<P, X = unknown> extends StepBase<P, X> {
  /** The element's kind. */
  readonly type: 'tasklet';
  /** The work: called once, or again while it returns `'CONTINUABLE'`; each call commits. */
  readonly tasklet: (ctx: TaskletContext<P, X>) => TaskletResult | Promise<TaskletResult>;
  /** Run the tasklet inside the commit's transaction (default true). */
  readonly transactional?: boolean;
}

/**
 * A step that reads items, processes them and writes them in chunks (`s.chunk`): each chunk's
 * writes commit in one transaction with the step's checkpoint (counters, reader position,
 * ExecutionContext), so a restart resumes after the last committed chunk.
 */
export interface ChunkStepDefinition<P, I, O, X = unknown> extends StepBase<P, X> {
  /** The element's kind. */
  readonly type: 'chunk';
  /** Items per chunk (and per transaction). */
  readonly chunkSize: number | ((ctx: StepContext<P, X>) => number);
  /** Makes the step's reader; called once per step execution. */
  readonly reader: (ctx: StepContext<P, X>) => ItemReader<I>;
  /** Turns an item into what is written; returning `undefined` filters it out (counted as filtered). */
  readonly processor?: (item: I, ctx: StepContext<P, X>) => O | undefined | Promise<O | undefined>;
  /**
   * Whether a chunk rolled back by its writer is processed again before it is written again
   * (retried, or written item by item), as Spring Batch does by default. Default false: each
   * item is processed once and its result kept until it is written (Spring Batch's
   * processorNonTransactional), which spares processors that call other services or cost
   * much; set it when the processor's results depend on what the rolled-back writes did.
   */
  readonly processorTransactional?: boolean;
  /** Instead of `processor`: a processor that runs in worker threads (see threadedProcessor). */
  readonly processInThreads?: ThreadedProcessor;
  /**
   * How many items of a chunk the processor works on at once (default 1: one after another),
   * like Spring Batch's AsyncItemProcessor: for processors that wait on I/O (HTTP calls,
   * lookups). The writer still gets the chunk's outputs in the items' order, and the chunk
   * still commits as a whole with its checkpoint. Each item is retried and skipped on its own;
   * the skip limit counts every skip, those of items in flight too. An item that fails for good
   * (not skippable) starts no more items; once those in flight have settled the chunk fails, and
   * nothing of it is written. Process listeners of different items may interleave. At most
   * `chunkSize` items are in flight.
   *
   * @example
   * processor: (order) => fetchCustomer(order.customerId).then((c) => ({ ...order, country: c.country })),
   * processConcurrency: 16,
   */
  readonly processConcurrency?: number;
  /** Makes the step's writer; called once per step execution. It writes each chunk through `chunk.tx`. */
  readonly writer: (ctx: StepContext<P, X>) => ItemWriter<O>;
  /** Which failed items are skipped instead of failing the step. */
  readonly skip?: SkipPolicy<P, X>;
  /** Which failed items or chunks are tried again first. */
  readonly retry?: RetryPolicy;
  /**
   * Errors that do not roll anything back. A read or process error listed here that the skip
   * policy refuses drops its item (logged as a warning, not counted as a skip) and the step
   * goes on, as in Spring Batch. For the writer: the chunk is still rolled back and written
   * again item by item (as when a write error is skippable), so that every other item is
   * written; for the item whose write throws such an error, what the writer did is kept, and
   * the item counts as a write skip when the skip policy accepts the error, else as written.
   */
  readonly noRollback?: ErrorMatcher[];
  /** Listeners to each chunk and item (see {@link ChunkListener}). */
  readonly chunkListeners?: ChunkListener<P, I, O, X>[];
  /**
   * Read the next chunk while the previous one is being written and committed (PostgreSQL
   * only; ignored on SQLite, whose writes run on this thread). Pays off when reading costs CPU
   * (parsing a file) and writing waits on the database. The checkpoint still records the
   * reader's position at the end of each committed chunk, so a restart resumes exactly there;
   * items read ahead are simply read again. The reader must not depend on the previous chunk
   * having committed, and read listeners of the next chunk may run before the previous
   * chunk's write listeners.
   */
  readonly readAhead?: boolean;
}

/** Where a partitioned step's partitions run. */
export type PartitionMode = 'local' | 'cluster';

/**
 * A value that comes back from JSON as it went in, checked part by part: `T` itself where it
 * does, and where it does not a type naming why (a Date comes back as a string, `undefined` in an
 * array as null; functions, bigints and symbols are not kept), which `T` is then not assignable
 * to. An object's property may be `undefined` (or optional): it comes back absent, which reads
 * as `undefined` too. A value typed `unknown` is left as it is.
 */
export type JsonSafe<T> = unknown extends T
  ? T
  : T extends string | number | boolean | null | undefined
    ? T
    : T extends Date
      ? 'a Date comes back from JSON as a string: store date.toISOString()'
      : T extends (...args: never[]) => unknown
        ? 'a function is not kept in JSON'
        : T extends readonly unknown[]
          ? { [K in keyof T]: undefined extends T[K] ? 'undefined in an array comes back from JSON as null' : JsonSafe<T[K]> }
          : T extends object
            ? { [K in keyof T]: JsonSafe<T[K]> }
            : 'not kept in JSON as it is';

/**
 * What a partition's values `X` must be (`X extends PartitionValues<X>`): an object (a type
 * literal or an interface) whose every value is {@link JsonSafe}, since a partition is
 * saved in the job repository as JSON and read back from there by the node that runs it.
 */
export type PartitionValues<X> = object & {
  [K in keyof X]: X extends readonly unknown[] ? 'a partition is an object of named values, not an array' : JsonSafe<X[K]>;
};

/** The step each partition of a partitioned step runs: a tasklet or chunk step, seeing the partition's values `X` as `ctx.partition`. */
export type PartitionWorker<P, X> = TaskletStepDefinition<P, X> | SomeChunkStep<P, X>;

/**
 * A step split into partitions that run concurrently: the partitioner returns the values of
 * each partition (e.g. a key range), and each partition runs `worker` (a chunk or tasklet step)
 * as a step execution of its own, with its own counters and checkpoints, its callbacks seeing
 * the partition's values, typed `X`, as `ctx.partition`. The manager step sums their counters
 * and takes the worst status. A restart re-runs only the partitions that did not complete.
 */
export interface PartitionedStepDefinition<P, X = ExecutionContext> extends StepBase<P> {
  /** The element's kind. */
  readonly type: 'partitioned';
  /**
   * Returns each partition's values (its ExecutionContext, saved as JSON: see
   * {@link PartitionValues}); `gridSize` is a hint of how many to make.
   */
  readonly partitioner: (ctx: StepContext<P> & { gridSize: number }) => X[] | Promise<X[]>;
  /** How many partitions the partitioner is asked for (its `gridSize`); default 4. */
  readonly gridSize?: number | ((ctx: StepContext<P>) => number);
  /**
   * The step each partition runs. Its callbacks get the partition's values as `ctx.partition`,
   * and its `stepContext` starts as a copy of them (where it also keeps its own checkpoints).
   */
  readonly worker: PartitionWorker<P, X>;
  /**
   * `cluster` (default): any live node that has the job claims partitions, this process
   * included; `local`: only this process runs them.
   */
  readonly mode?: PartitionMode;
  /** Partitions this process runs at once (default 4). */
  readonly concurrency?: number;
  /** Fail the step if its partitions have not all ended within this time. */
  readonly timeoutMs?: number;
  /**
   * Extra workers started for this step (cluster mode only): after queuing the partitions the
   * manager launches `count` workers (capped at the number of partitions), which claim
   * partitions like any node, and stops them when all partitions have ended. Default launcher:
   * `localProcessLauncher()` (local `nightshift node` processes).
   */
  readonly workers?: PartitionWorkers<P>;
}

/**
 * A partitioned step as `s.partitioned` takes it: its `worker` may also be made by a function of
 * a builder whose steps see the partition's values typed as the partitioner returns them
 * (`worker: (w) => w.chunk({ reader: ({ partition }) => ... })`).
 */
export interface PartitionedStepSpec<P, X> extends Omit<PartitionedStepDefinition<P, X>, 'type' | 'worker'> {
  /** The step each partition runs (see {@link PartitionedStepDefinition.worker}), or a function making it with `w`. */
  readonly worker: PartitionWorker<P, X> | ((w: PartitionWorkerBuilder<P, X>) => PartitionWorker<P, X>);
}

/** Builders for a partitioned step's worker, whose callbacks see the partition's values `X` as `ctx.partition`. */
export interface PartitionWorkerBuilder<P, X> {
  /** A tasklet step (see {@link TaskletStepDefinition}). */
  tasklet(def: Omit<TaskletStepDefinition<P, X>, 'type'>): TaskletStepDefinition<P, X>;
  /** A chunk step reading `I` and writing `O` (see {@link ChunkStepDefinition}). */
  chunk<I, O = I>(def: Omit<ChunkStepDefinition<P, I, O, X>, 'type'>): ChunkStepDefinition<P, I, O, X>;
}

/** The elastic workers of a partitioned step. */
export interface PartitionWorkers<P> {
  /** How many workers to start (0: none). */
  readonly count: number | ((ctx: StepContext<P>) => number);
  /** Partitions each worker runs at once (default: the step's concurrency, 4). */
  readonly concurrency?: number;
  /** Starts and stops the workers (default `localProcessLauncher()`: local `nightshift node` processes). */
  readonly launcher?: WorkerLauncher;
}

/** A flow element that runs no step and only picks an exit code for the transitions (`s.decision`), like Spring Batch's JobExecutionDecider. */
export interface DecisionDefinition<P> extends ElementBase {
  /** The element's kind. */
  readonly type: 'decision';
  /** Returns an exit code for the transitions to match. */
  readonly decide: (ctx: DecisionContext<P>) => string | Promise<string>;
}

/** What a decision (`s.decision({ decide })`) decides on. */
export interface DecisionContext<P> {
  /** The job's parameters, typed by its schema. */
  readonly params: P;
  /** The running job execution. */
  readonly jobExecution: JobExecution;
  /** The exit status of the element before the decision (undefined when it comes first). */
  readonly lastExitStatus: ExitStatus | undefined;
  /** Job-level ExecutionContext, as the steps left it (read it; steps write it). */
  readonly jobContext: ExecutionContext;
  /** Runs SQL against the repository's database, e.g. to decide on the data a step wrote. */
  readonly db: Database;
  /** A logger bound to the job, execution and decision. */
  readonly log: Logger;
}

/** A flow element that runs several flows at once (`s.split`); splits may nest. */
export interface SplitDefinition<P> extends ElementBase {
  /** The element's kind. */
  readonly type: 'split';
  /** Flows run in parallel; the split ends when all have ended, with the worst status. */
  readonly flows: FlowElement<P>[][];
}

/**
 * A step that launches another job, like Spring Batch's JobStep. The child job runs in this
 * process as an execution of its own (its own instance, executions, steps and counters), and
 * the step ends with the child's status and exit code. The child's parameters are computed once
 * and kept in the step's context: a restart of the parent restarts a failed or stopped child
 * instance with the same parameters, and does not run again a child that completed. A child
 * instance that had already completed before the step launched it refuses the launch (the step
 * fails), as any launch of a completed instance does.
 */
export interface JobStepDefinition<P, C extends ParamsSchema> extends StepBase<P> {
  /** The element's kind. */
  readonly type: 'job';
  /** The child job; it need not be among the jobs the process was given. */
  readonly job: JobDefinition<C>;
  /**
   * The child's parameters. Default: those of the parent's parameters that the child declares,
   * and the implicit `run.id` and `fireTime` when the parent has them (so each next instance of
   * the parent launches a new instance of the child).
   */
  readonly params?: (ctx: StepContext<P>) => ParamsInput<C>;
}

/** A reusable flow, made by {@link defineFlow}, that several jobs use as an element of their flows. */
export interface FlowDefinition<S extends ParamsSchema = ParamsSchema> {
  /** The flow's name; the element using it in a job is named after it. */
  readonly name: string;
  /** The parameters its steps use: every job using the flow must declare them, with the same types. */
  readonly params: S;
  /** The flow's elements in order. */
  readonly elements: FlowElement<ParamValues<S>>[];
}

/**
 * A reusable flow as one element of a job's flow (named after the flow). Its elements run in
 * the job's execution as the job's own steps; its outcome (the status and exit code the flow
 * ended with) goes through the element's `on` transitions like a step's.
 */
export interface SubflowDefinition extends ElementBase {
  /** The element's kind. */
  readonly type: 'flow';
  /** The reusable flow. */
  readonly flow: SomeFlow;
}

/** Any kind of step: tasklet, chunk, partitioned, or job step. */
export type StepDefinition<P> = TaskletStepDefinition<P> | SomeChunkStep<P> | SomePartitionedStep<P> | SomeJobStep<P>;
/** One element of a job's flow: a step, a decision, a split, or a reusable flow. */
export type FlowElement<P> = StepDefinition<P> | DecisionDefinition<P> | SplitDefinition<P> | SubflowDefinition;

const JOB_BRAND = Symbol.for('nightshift.job');

/** Whether a value is a job made by {@link defineJob} (e.g. among a config file's exports). */
export function isJobDefinition(value: unknown): value is JobDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[JOB_BRAND] === true;
}

/** A problem a job's parameter validator found: the parameters it concerns, and what is wrong with them. */
export interface ParamsProblem<P> {
  /** The parameters at fault. */
  readonly params: readonly (keyof P & string)[];
  /** What is wrong with them. */
  readonly message: string;
}

/**
 * Checks a job's parameters together, after each was typed and checked on its own (cross-field
 * rules, like Spring Batch's JobParametersValidator): returns the problems it finds, or nothing.
 */
export type ParamsValidator<P> = (params: P) => ParamsProblem<P> | readonly ParamsProblem<P>[] | undefined | void;

/** The values of the parameters every job accepts without declaring them (see IMPLICIT_PARAMS). */
export interface ImplicitParamValues {
  /** The next-instance counter of the default incrementer. */
  readonly 'run.id'?: number;
  /** A scheduled firing's time. */
  readonly fireTime?: Date;
}

/** A parameter value as a launch takes it: a date also as ISO-8601 text (as the CLI and the HTTP API take it). */
export type ParamInput<T> = T extends Date ? Date | string : T;

/** Parameters as a launch takes them: any of the job's own, typed, and the implicit ones. */
export type ParamsInput<S extends ParamsSchema> = { -readonly [K in keyof ParamValues<S>]?: ParamInput<ParamValues<S>[K]> | undefined } & {
  -readonly [K in keyof ImplicitParamValues]?: ParamInput<ImplicitParamValues[K]> | undefined;
};

/**
 * Computes the next instance's parameters from those of the job's newest instance (its last
 * execution's), or from nothing for a job that never ran, like Spring Batch's
 * JobParametersIncrementer. Parameters given to the launch override what it returns.
 */
export type ParamsIncrementer<S extends ParamsSchema> = (previous: (ParamValues<S> & ImplicitParamValues) | undefined) => ParamsInput<S>;

/** One scheduled firing of a job, as its {@link JobSpec.firingParams} sees it. */
export interface Firing<P> {
  /** The firing's scheduled time (for a trigger fired by hand, when it was, by the database's clock). */
  readonly fireTime: Date;
  /** The trigger's name. */
  readonly trigger: string;
  /** The trigger's IANA time zone (its `tz`); `UTC` for a trigger without one. */
  readonly tz: string;
  /** The trigger's parameters, typed, with the job's defaults; a required one the trigger leaves out is absent. */
  readonly params: Partial<P>;
  /**
   * The fire time's calendar date in the trigger's time zone, moved by `offsetDays` (default 0),
   * as `YYYY-MM-DD`, which a `p.date()` parameter takes: `day(-1)` is the business date of a
   * nightly run.
   */
  day(offsetDays?: number): string;
}

/** What a job's {@link JobSpec.firingParams} returns: the job's own parameters to set on a firing (`fireTime` is the scheduler's). */
export type FiringParams<S extends ParamsSchema> = { -readonly [K in keyof ParamValues<S>]?: ParamInput<ParamValues<S>[K]> | undefined };

/**
 * A job's definition, as produced by {@link defineJob}: `S` its parameter declarations, `N` its
 * name (a string literal type, so that launching by name is checked: see `Nightshift.run`).
 */
export interface JobDefinition<S extends ParamsSchema = ParamsSchema, N extends string = string> {
  /** The job's name. */
  readonly name: N;
  /** What the job does, for people. */
  readonly description?: string;
  /** The parameter declarations. */
  readonly params: S;
  /** The job's elements in order. */
  readonly flow: FlowElement<ParamValues<S>>[];
  /** Whether a failed or stopped instance may run again. */
  readonly restartable: boolean;
  /**
   * At most this many executions of the job run at once in the whole cluster (see
   * {@link JobSpec.maxRunning}); undefined: no limit.
   */
  readonly maxRunning?: number;
  /** The job listeners, in order. */
  readonly listeners: JobListener<ParamValues<S>>[];
  /** The job's parameter validators (see {@link JobSpec.validate}), run by `resolveJobParams` at every launch. */
  readonly validators: readonly ParamsValidator<ParamValues<S>>[];
  /** The next-instance incrementer (see {@link JobSpec.incrementer}); without it, `run.id` counts up. */
  readonly incrementer?: ParamsIncrementer<S>;
  /** Process exit codes for the job's exit codes (see {@link JobSpec.exitCodes}). */
  readonly exitCodes?: Readonly<Record<string, number>>;
  /** Computes each scheduled firing's parameters (see {@link JobSpec.firingParams}). */
  readonly firingParams?: (firing: Firing<ParamValues<S>>) => FiringParams<S>;
  /** Whether a firing's `fireTime` identifies its instance (see {@link JobSpec.fireTimeIdentifying}). */
  readonly fireTimeIdentifying: boolean;
  /** Reads the execution summary the HTTP API shows (see {@link JobSummary}). */
  readonly summary?: JobSummary;
}

/**
 * Reads what a job recorded about one of its executions beyond the step counters (the rows it
 * rejected and why, say) as a small JSON object, for the execution's details in the HTTP API and
 * console. It runs where the details are read, against the job repository's database.
 */
export type JobSummary = (ctx: { readonly execution: JobExecution; readonly db: StepContext['db'] }) =>
  Promise<Record<string, unknown> | undefined> | Record<string, unknown> | undefined;

/*
 * Erased types. JobDefinition<S>, ChunkStepDefinition<P, I, O>, JobStepDefinition<P, C> and
 * FlowDefinition<S> are invariant in their type arguments (their callbacks take the types they
 * are made of), so a list of differently typed ones is typed by these: what a definition gives
 * is typed by its widest type, and what its callbacks take by `never` (a type not known here).
 * Every definition is one of its erased type. The engine, which hands each job only parameters
 * typed by its own schema and each processor and writer only what the step's own reader and
 * processor produced, takes them back by the functions after them: the only casts between the two.
 */

/**
 * Any job made by {@link defineJob}, whatever its parameters and name: what a list of jobs holds
 * (`createNightshift({ jobs })`, `startNode({ jobs })`, a job step's child). Every
 * `JobDefinition<S, N>` is one.
 */
export interface SomeJob extends Omit<JobDefinition, 'flow' | 'listeners' | 'validators' | 'incrementer' | 'firingParams'> {
  /** The job's elements in order, taking parameters of the job's own type. */
  readonly flow: FlowElement<never>[];
  /** The job listeners, in order. */
  readonly listeners: JobListener<never>[];
  /** The job's parameter validators. */
  readonly validators: readonly ParamsValidator<never>[];
  /** The next-instance incrementer. */
  readonly incrementer?: (previous: never) => ParamsInput<ParamsSchema>;
  /** Computes each scheduled firing's parameters. */
  readonly firingParams?: (firing: never) => FiringParams<ParamsSchema>;
}

/**
 * A chunk step whatever its item types, as a flow holds it: every `ChunkStepDefinition<P, I, O>`
 * is one. Its reader's items are `unknown`; its processor, writer and chunk listeners take items
 * of the step's own types.
 */
export interface SomeChunkStep<P, X = unknown> extends Omit<ChunkStepDefinition<P, unknown, unknown, X>, 'processor' | 'writer' | 'chunkListeners'> {
  /** Turns an item into what is written; returning `undefined` filters it out. */
  readonly processor?: (item: never, ctx: StepContext<P, X>) => unknown;
  /** Makes the step's writer; called once per step execution. */
  readonly writer: (ctx: StepContext<P, X>) => ItemWriter<never>;
  /** Listeners to each chunk and item (see {@link ChunkListener}). */
  readonly chunkListeners?: ChunkListener<P, never, never, X>[];
}

/**
 * A partitioned step whatever its partitions' type, as a flow holds it: every
 * `PartitionedStepDefinition<P, X>` is one. Its partitioner returns objects; its worker's
 * callbacks take the partition's values of the step's own type.
 */
export interface SomePartitionedStep<P> extends Omit<PartitionedStepDefinition<P>, 'partitioner' | 'worker'> {
  /** Returns each partition's values. */
  readonly partitioner: (ctx: StepContext<P> & { gridSize: number }) => readonly object[] | Promise<readonly object[]>;
  /** The step each partition runs, taking the partition's values of the step's own type. */
  readonly worker: PartitionWorker<P, never>;
}

/** A job step whatever its child job's parameters, as a flow holds it: every `JobStepDefinition<P, C>` is one. */
export interface SomeJobStep<P> extends Omit<JobStepDefinition<P, ParamsSchema>, 'job'> {
  /** The child job. */
  readonly job: SomeJob;
}

/** A reusable flow whatever its parameters, as a job's flow holds it: every `FlowDefinition<S>` is one. */
export interface SomeFlow extends Omit<FlowDefinition, 'elements'> {
  /** The flow's elements in order, taking parameters of the flow's own type. */
  readonly elements: FlowElement<never>[];
}

/** A job as the engine runs it, with parameters typed by its own schema (resolveJobParams). */
export function runnableJob(job: SomeJob): JobDefinition {
  return job as JobDefinition;
}

/** A chunk step as the engine runs it, its processor given its own reader's items and its writer its own processor's. */
export function runnableChunkStep<P>(step: SomeChunkStep<P>): ChunkStepDefinition<P, unknown, unknown> {
  return step as ChunkStepDefinition<P, unknown, unknown>;
}

/** A partitioned step's worker as the engine runs it: its `ctx.partition` is what the step's own partitioner returned, read back from JSON. */
export function runnableWorker<P>(step: SomePartitionedStep<P>): TaskletStepDefinition<P> | SomeChunkStep<P> {
  return step.worker as TaskletStepDefinition<P> | SomeChunkStep<P>;
}

/** A reusable flow's elements as elements of a job's flow: the job declares the flow's parameters, with their types (checkSubflowParams). */
export function subflowElements<P>(flow: SomeFlow): FlowElement<P>[] {
  return flow.elements as FlowElement<P>[];
}

/** Builders for flow elements with the job's parameter type bound. */
export interface FlowBuilder<P> {
  /** A tasklet step (see {@link TaskletStepDefinition}). */
  tasklet(def: Omit<TaskletStepDefinition<P>, 'type'>): TaskletStepDefinition<P>;
  /** A chunk step reading `I` and writing `O` (see {@link ChunkStepDefinition}). */
  chunk<I, O = I>(def: Omit<ChunkStepDefinition<P, I, O>, 'type'>): ChunkStepDefinition<P, I, O>;
  /**
   * A partitioned step (see {@link PartitionedStepDefinition}) whose partitions' values have the
   * type its partitioner returns (`X`), which its worker's callbacks see as `ctx.partition` when
   * it is made by `worker: (w) => w.chunk(...)` (or `w.tasklet`). `X` is inferred from the
   * partitioner when it comes before the worker; else name it: `s.partitioned<Range>({ ... })`.
   *
   * @example
   * s.partitioned({
   *   name: 'load',
   *   partitioner: ({ gridSize }) => Array.from({ length: gridSize }, (_, i) => ({ shard: i, of: gridSize })),
   *   worker: (w) => w.tasklet({ name: 'load-shard', tasklet: ({ partition }) => loadShard(partition.shard, partition.of) }),
   * })
   */
  partitioned<X extends PartitionValues<X> = ExecutionContext>(def: PartitionedStepSpec<P, X>): PartitionedStepDefinition<P, X>;
  /** A decision (see {@link DecisionDefinition}). */
  decision(def: Omit<DecisionDefinition<P>, 'type'>): DecisionDefinition<P>;
  /** A split (see {@link SplitDefinition}). */
  split(def: Omit<SplitDefinition<P>, 'type'>): SplitDefinition<P>;
  /** A step that launches another job (see {@link JobStepDefinition}). */
  job<C extends ParamsSchema>(def: Omit<JobStepDefinition<P, C>, 'type'>): JobStepDefinition<P, C>;
  /**
   * A reusable flow made by {@link defineFlow}, as one element named after it, with transitions
   * on how it ended. The job must declare the parameters the flow declares, with the same types.
   */
  flow<S extends ParamsSchema>(def: {
    readonly flow: FlowDefinition<S> & ([P] extends [ParamValues<S>] ? unknown : { readonly 'the job lacks parameters this flow declares, or types them differently': never });
    readonly on?: Transitions;
  }): SubflowDefinition;
}

function workerBuilder<P, X>(): PartitionWorkerBuilder<P, X> {
  return { tasklet: (def) => ({ ...def, type: 'tasklet' }), chunk: (def) => ({ ...def, type: 'chunk' }) };
}

const builder: FlowBuilder<never> = {
  tasklet: (def) => ({ ...def, type: 'tasklet' }),
  chunk: (def) => ({ ...def, type: 'chunk' }),
  partitioned: (def) => ({ ...def, worker: typeof def.worker === 'function' ? def.worker(workerBuilder()) : def.worker, type: 'partitioned' }),
  decision: (def) => ({ ...def, type: 'decision' }),
  split: (def) => ({ ...def, type: 'split' }),
  job: (def) => ({ ...def, type: 'job' }),
  flow: (def) => ({ name: def.flow?.name, flow: def.flow, on: def.on, type: 'flow' }),
};

/** Every element of a flow, depth first: those of its splits' flows and of the reusable flows it uses included. */
export function* allElements<P>(flow: readonly FlowElement<P>[]): Generator<FlowElement<P>> {
  for (const el of flow) {
    yield el;
    if (el.type === 'split') for (const f of el.flows) yield* allElements(f);
    if (el.type === 'flow') yield* allElements(subflowElements<P>(el.flow));
  }
}

/** Whether a flow has a partitioned step anywhere (nested flows and splits included). */
export function hasPartitionedStep<P>(flow: readonly FlowElement<P>[]): boolean {
  for (const e of allElements(flow)) if (e.type === 'partitioned') return true;
  return false;
}

const FLOW_BRAND = Symbol.for('nightshift.flow');

/** The parts of a reusable flow: its name, the parameters its steps use, and its elements. */
export interface FlowSpec<S extends ParamsSchema> {
  /** The flow's name: letters, digits and `_ . : -`. */
  name: string;
  /** The parameters the flow's steps use; their types flow into the steps' callbacks. */
  params?: S | undefined;
  /** The flow's elements in order, made with the builder `s`. */
  steps: (s: FlowBuilder<ParamValues<S>>) => FlowElement<ParamValues<S>>[];
}

/**
 * Defines a flow once for several jobs to use as an element of their flows (`s.flow({ flow })`),
 * with transitions on how it ended. Its steps become steps of each job that uses it, so their
 * names must not clash with the job's own; their transitions stay within the flow.
 *
 * @example
 * export const load = defineFlow({
 *   name: 'load',
 *   params: { input: p.string({ required: true }) },
 *   steps: (s) => [s.tasklet({ name: 'fetch', tasklet: ({ params }) => fetchFile(params.input) }), s.chunk({ name: 'import', ... })],
 * });
 * // in a job: steps: (s) => [s.flow({ flow: load, on: { FAILED: 'alert', '*': 'report' } }), ...]
 */
export function defineFlow<S extends ParamsSchema = Record<never, never>>(spec: FlowSpec<S>): FlowDefinition<S> {
  if (!spec.name || !NAME.test(spec.name) || RESERVED_TARGETS.has(spec.name)) {
    throw new UsageError(`invalid flow name ${JSON.stringify(spec.name)}: use letters, digits and _ . : -`);
  }
  const params = (spec.params ?? {}) as S;
  const elements = spec.steps(builder as unknown as FlowBuilder<ParamValues<S>>);
  validateFlow(`flow ${spec.name}`, elements);
  const flow: FlowDefinition<S> = { name: spec.name, params, elements };
  Object.defineProperty(flow, FLOW_BRAND, { value: true });
  return flow;
}

function isFlowDefinition(value: unknown): value is FlowDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FLOW_BRAND] === true;
}

/** What {@link defineJob} takes: the job's name, parameters, steps and options. */
export interface JobSpec<S extends ParamsSchema, N extends string = string> {
  /** The job's name: letters, digits and `_ . : -`; unique among the jobs a process is given. */
  name: N;
  /** Shown by `nightshift jobs`, the HTTP API and the dashboard. */
  description?: string | undefined;
  /** Parameter declarations; their types flow into every step callback. */
  params?: S | undefined;
  /** The job's elements in order; `on` transitions can branch between them. */
  steps: (s: FlowBuilder<ParamValues<S>>) => FlowElement<ParamValues<S>>[];
  /** A job that is not restartable refuses a second execution of a failed instance. */
  restartable?: boolean | undefined;
  /**
   * At most this many executions of this job run at once, across the whole cluster and whatever
   * launched them (a positive integer; no limit when not given): Quartz's
   * `@DisallowConcurrentExecution` with `maxRunning: 1`, a graphile-worker named queue, a pg-boss
   * singleton. Executions that are STARTED or STOPPING count, on any node or in any process
   * (`nightshift run`); queued ones (STARTING) do not. A node claims no execution of the job
   * while the limit is reached: submitted, scheduled and failed-over executions wait queued, in
   * id order, and the next is claimed as soon as one ends. An in-process launch (`run`,
   * `restart`, `ns.run`, `ns.start`) while the limit is reached is refused with a
   * `MaxRunningError` naming the running executions: `submit` queues it instead. Give every node and process the same
   * limit (the config's). The child executions of job steps are not limited.
   *
   * @example
   * maxRunning: 1 // a nightly ETL never overlaps a manual re-run with other parameters
   */
  maxRunning?: number | undefined;
  /** Told when each execution begins and ends (see {@link JobListener}). */
  listeners?: JobListener<ParamValues<S>>[] | undefined;
  /**
   * Validators that see all parameters together (cross-field rules), after each parameter was
   * typed and checked on its own. Every launch runs them before anything is written (run,
   * start, restart, next instance, submit, the HTTP API, a scheduled firing); problems refuse
   * the launch with one ParameterError naming the parameters.
   *
   * @example
   * validate: ({ from, to }) => (from > to ? { params: ['from', 'to'], message: 'from must not be after to' } : undefined)
   */
  validate?: ParamsValidator<ParamValues<S>> | readonly ParamsValidator<ParamValues<S>>[] | undefined;
  /**
   * How `run --next` and `runNextInstance` compute the next instance's parameters from the
   * newest instance's. Without one, the next instance gets `run.id` one higher than the newest
   * instance's, and the parameters given.
   *
   * @example
   * incrementer: (previous) => ({ day: previous ? addDays(previous.day, 1) : new Date('2024-01-01') })
   */
  incrementer?: ParamsIncrementer<S> | undefined;
  /**
   * Computes the parameters of each scheduled firing of the job, on the node that fires it (and
   * for `schedule trigger`), from the firing: its fire time, trigger, time zone and the trigger's
   * parameters. What it returns is set over the trigger's parameters, then `fireTime` is added.
   * Triggers may leave out a required parameter it sets. Adding a trigger (`schedule add`, the
   * API, a node loading its config) tries it on the trigger's next fire time and refuses the
   * trigger if what it returns does not fit the job (an unknown or missing parameter, a wrong
   * type). It runs inside the firing's transaction: keep it quick and without I/O (a promise is
   * refused). A throw, or parameters the job refuses, makes that firing `refused` in the fire
   * log, with the reason, and the trigger moves on (a throw when the trigger is added lets it be
   * added: it may refuse some days on purpose). With `fireTimeIdentifying: false`
   * it gives Spring Batch's business-date instances (see the example there).
   *
   * @example
   * firingParams: (firing) => ({ businessDate: firing.day(-1) }) // each night's run loads the day before, in the trigger's zone
   */
  firingParams?: ((firing: Firing<ParamValues<S>>) => FiringParams<S>) | undefined;
  /**
   * Whether each firing's `fireTime` identifies its job instance. By default it does: every fire
   * time is an instance of its own. With false the job's own identifying parameters alone make the
   * instance, `fireTime` is still recorded, and Spring Batch's JobInstance rules hold across
   * firings and launches by hand alike: a firing, `run` or `submit` of an instance that completed
   * is refused, one of an instance that failed restarts it from its last checkpoint.
   *
   * @example
   * // One instance per business date, whether a trigger or an operator starts it:
   * params: { businessDate: p.date({ required: true }) },
   * firingParams: (firing) => ({ businessDate: firing.day(-1) }),
   * fireTimeIdentifying: false,
   */
  fireTimeIdentifying?: boolean | undefined;
  /**
   * The CLI's process exit code for the execution's exit code, like Spring Batch's
   * ExitCodeMapper: keys are exit-code patterns as in transitions (`NOOP`, `PARTIAL*`), values
   * 0-255; the most specific matching pattern wins. An exit code no pattern matches exits as
   * usual: 0 for a COMPLETED execution, 1 otherwise (a missing input file too); 2 is for bad
   * usage found before any execution exists (see {@link processExitCode}).
   *
   * @example
   * exitCodes: { NOOP: 3, 'PARTIAL*': 4 }
   */
  exitCodes?: Readonly<Record<string, number>> | undefined;
  /** What the execution details show as its summary (e.g. rejected rows); see {@link JobSummary}. */
  summary?: JobSummary | undefined;
}

const RESERVED_TARGETS = new Set(['end', 'fail', 'stop']);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

/**
 * Defines a job. The parameter schema types every step callback's `params`.
 *
 * @example
 * export const hello = defineJob({
 *   name: 'hello',
 *   params: { who: p.string({ default: 'world' }) },
 *   steps: (s) => [s.tasklet({ name: 'greet', tasklet: ({ params, log }) => log.info(`hello ${params.who}`) })],
 * });
 */
export function defineJob<S extends ParamsSchema = Record<never, never>, N extends string = string>(spec: JobSpec<S, N>): JobDefinition<S, N> {
  if (!spec.name || !NAME.test(spec.name)) {
    throw new UsageError(`invalid job name ${JSON.stringify(spec.name)}: use letters, digits and _ . : -`);
  }
  const params = (spec.params ?? {}) as S;
  for (const key of Object.keys(params)) {
    if (Object.hasOwn(IMPLICIT_PARAMS, key)) throw new UsageError(`job ${spec.name}: parameter name ${key} is reserved`);
  }
  checkDefaults(spec.name, params);
  // From JavaScript nothing else says so: without this, a missing steps fails as "spec.steps is not a function".
  if (typeof spec.steps !== 'function') {
    throw new UsageError(`job ${spec.name}: steps must be a function of the step builder, e.g. steps: (s) => [s.tasklet({ name, tasklet })], got ${describeValue(spec.steps)}`);
  }
  const flow = spec.steps(builder as unknown as FlowBuilder<ParamValues<S>>);
  validateFlow(`job ${spec.name}`, flow);
  checkSubflowParams(spec.name, params, flow);
  const job: JobDefinition<S, N> = {
    name: spec.name,
    description: spec.description,
    params,
    flow,
    restartable: spec.restartable ?? true,
    ...(spec.maxRunning === undefined ? {} : { maxRunning: checkMaxRunning(spec.name, spec.maxRunning) }),
    listeners: spec.listeners ?? [],
    exitCodes: spec.exitCodes === undefined ? undefined : checkExitCodes(spec.name, spec.exitCodes),
    validators: checkFunctions(spec.name, 'validate', spec.validate),
    incrementer: checkFunctions(spec.name, 'incrementer', spec.incrementer)[0],
    firingParams: checkFunctions(spec.name, 'firingParams', spec.firingParams)[0],
    fireTimeIdentifying: checkFireTimeIdentifying(spec.name, spec.fireTimeIdentifying),
    ...(spec.summary ? { summary: spec.summary } : {}),
  };
  Object.defineProperty(job, JOB_BRAND, { value: true });
  return job;
}

/** A job's maxRunning: a positive integer (a string, a fraction or 0 would limit nothing or everything by mistake). */
function checkMaxRunning(job: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`job ${job}: maxRunning must be a positive integer (executions of the job that may run at once), got ${typeof value === 'number' ? value : typeof value === 'string' ? `the string ${JSON.stringify(value)}` : describeValue(value)}`);
  }
  return value;
}

function checkFireTimeIdentifying(job: string, value: unknown): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'boolean') throw new UsageError(`job ${job}: fireTimeIdentifying must be true or false, got ${typeof value === 'string' ? JSON.stringify(value) : describeValue(value)}`);
  return value;
}

/** Every reusable flow in the job's flow (splits and flows included) finds its parameters declared by the job, with the same kinds. */
function checkSubflowParams<P>(job: string, params: ParamsSchema, elements: FlowElement<P>[]): void {
  for (const el of elements) {
    if (el.type === 'split') el.flows.forEach((f) => checkSubflowParams(job, params, f));
    if (el.type !== 'flow') continue;
    for (const [name, spec] of Object.entries(el.flow.params as ParamsSchema)) {
      const own = Object.hasOwn(params, name) ? params[name] : IMPLICIT_PARAMS[name];
      if (!own) throw new UsageError(`job ${job}: flow ${el.name} uses parameter ${name} (${spec.kind}), which the job does not declare`);
      if (own.kind !== spec.kind) throw new UsageError(`job ${job}: flow ${el.name} uses parameter ${name} as ${spec.kind}, but the job declares it ${own.kind}`);
    }
    checkSubflowParams(job, params, subflowElements<P>(el.flow));
  }
}

/** A job option that is a function or (for validators) a list of functions, as a list. */
function checkFunctions<F>(job: string, option: string, given: F | readonly F[] | undefined): readonly F[] {
  if (given === undefined) return [];
  const list = Array.isArray(given) && option === 'validate' ? (given as readonly F[]) : [given as F];
  if (list.some((f) => typeof f !== 'function')) {
    throw new UsageError(`job ${job}: ${option} must be a function${option === 'validate' ? ' or a list of functions' : ''}`);
  }
  return list;
}

/**
 * Types and checks parameters for a launch of `job`: each against its declaration (defaults
 * applied), then all together through the job's validators. Throws one ParameterError naming
 * every parameter at fault; returns the typed values.
 */
export function resolveJobParams(job: JobDefinition, raw: Record<string, unknown>): Record<string, unknown> {
  const values = resolveParams(job.name, job.params, raw);
  const problems: ParamsProblem<Record<string, unknown>>[] = [];
  for (const validate of job.validators) {
    let found;
    try {
      found = validate(values);
    } catch (error) {
      throw new ParameterError(`job ${job.name}: a parameter validator failed: ${errorMessage(error)}`, { cause: error });
    }
    if (found) problems.push(...(Array.isArray(found) ? found : [found as ParamsProblem<Record<string, unknown>>]));
  }
  if (problems.length) {
    const describe = (p: ParamsProblem<Record<string, unknown>>) =>
      (p.params?.length ? `${p.params.length === 1 ? 'parameter' : 'parameters'} ${p.params.join(', ')}: ` : '') + String(p.message);
    throw new ParameterError(`job ${job.name}: ${problems.map(describe).join('; ')}`);
  }
  return values;
}

function checkExitCodes(job: string, exitCodes: Readonly<Record<string, number>>): Readonly<Record<string, number>> {
  if (typeof exitCodes !== 'object' || exitCodes === null) throw new UsageError(`job ${job}: exitCodes must be an object of exit-code patterns to numbers`);
  for (const [pattern, code] of Object.entries(exitCodes)) {
    assertExitPattern(pattern, `job ${job}: exitCodes`);
    if (!Number.isInteger(code) || code < 0 || code > 255) {
      throw new UsageError(`job ${job}: exitCodes: ${pattern} must map to a process exit code from 0 to 255, got ${JSON.stringify(code)}`);
    }
  }
  return { ...exitCodes };
}

/**
 * The process exit code for an ended execution of `job` (what `nightshift run` exits with): the
 * job's `exitCodes` for the execution's exit code when a pattern matches, else 0 for COMPLETED
 * and 1 otherwise, whatever failed it: once an execution exists its status decides;
 * 2 is for bad usage found before any execution exists. A missing or malformed input file
 * fails the execution like a skip limit does, so both exit 1.
 */
export function processExitCode(
  job: Pick<JobDefinition, 'exitCodes'> | undefined,
  execution: { readonly status: BatchStatus; readonly exitStatus: ExitStatus; readonly failure?: unknown },
): number {
  const mapping = job?.exitCodes;
  const match = mapping && mostSpecificMatch(Object.keys(mapping), execution.exitStatus.code);
  if (mapping && match !== undefined) return mapping[match];
  if (execution.status === 'COMPLETED') return 0;
  return 1;
}

function validateFlow<P>(owner: string, flow: FlowElement<P>[]): void {
  const names = new Set<string>();
  const all: FlowElement<P>[] = [];
  const collect = (elements: FlowElement<P>[], where: string) => {
    if (!Array.isArray(elements) || elements.length === 0) throw new UsageError(`${owner}: ${where} has no steps`);
    for (const el of elements) {
      if (el?.type === 'flow' && !isFlowDefinition(el.flow)) throw new UsageError(`${owner}: s.flow needs a flow made by defineFlow`);
      if (!el || !el.name || !NAME.test(el.name) || RESERVED_TARGETS.has(el.name)) {
        throw new UsageError(`${owner}: invalid step name ${JSON.stringify(el?.name)}`);
      }
      if (names.has(el.name)) throw new UsageError(`${owner}: duplicate step name ${el.name}`);
      names.add(el.name);
      all.push(el);
      if ('startLimit' in el && el.startLimit !== undefined && (!Number.isInteger(el.startLimit) || el.startLimit < 0)) {
        throw new UsageError(`${owner}: step ${el.name}: startLimit must be a non-negative integer, got ${el.startLimit}`);
      }
      checkStepFunctions(`${owner}: step ${el.name}`, el);
      if (el.type === 'split') el.flows.forEach((f, i) => collect(f, `split ${el.name} flow ${i + 1}`));
      if (el.type === 'chunk') {
        if (typeof el.chunkSize === 'number' && (!Number.isInteger(el.chunkSize) || el.chunkSize < 1)) {
          throw new UsageError(`${owner}: step ${el.name}: chunkSize must be a positive integer, got ${el.chunkSize}`);
        }
        if (el.skip && typeof el.skip.limit === 'number' && (!Number.isInteger(el.skip.limit) || el.skip.limit < 0)) {
          throw new UsageError(`${owner}: step ${el.name}: skip limit must be a non-negative integer`);
        }
        validateChunkOptions(`${owner}: step ${el.name}`, el);
        if (el.processor && el.processInThreads) {
          throw new UsageError(`${owner}: step ${el.name}: give either processor or processInThreads, not both`);
        }
        if (el.retry && (!Number.isInteger(el.retry.limit) || el.retry.limit < 1)) {
          throw new UsageError(`${owner}: step ${el.name}: retry limit must be a positive integer`);
        }
      }
      if (el.type === 'partitioned') {
        if (!el.worker || (el.worker.type !== 'chunk' && el.worker.type !== 'tasklet')) {
          throw new UsageError(`${owner}: partitioned step ${el.name} needs a chunk or tasklet worker step`);
        }
        checkStepFunctions(`${owner}: partitioned step ${el.name}: worker step ${el.worker.name}`, runnableWorker(el));
        if (el.concurrency !== undefined && (!Number.isInteger(el.concurrency) || el.concurrency < 1)) {
          throw new UsageError(`${owner}: step ${el.name}: concurrency must be a positive integer, got ${el.concurrency}`);
        }
        if (el.workers) {
          const { count, concurrency } = el.workers;
          if (el.mode === 'local') throw new UsageError(`${owner}: step ${el.name}: workers need mode 'cluster' (local partitions run only in this process)`);
          if (typeof count !== 'function' && (!Number.isInteger(count) || count < 0)) {
            throw new UsageError(`${owner}: step ${el.name}: workers.count must be a non-negative integer or a function, got ${count}`);
          }
          if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
            throw new UsageError(`${owner}: step ${el.name}: workers.concurrency must be a positive integer, got ${concurrency}`);
          }
        }
      }
      if (el.type === 'decision' && !el.on) throw new UsageError(`${owner}: decision ${el.name} needs transitions (on)`);
      if (el.type === 'job' && !isJobDefinition(el.job)) throw new UsageError(`${owner}: job step ${el.name} needs a job made by defineJob`);
      if (el.type === 'flow') collect(subflowElements<P>(el.flow), `flow ${el.name}`);
    }
  };
  collect(flow, 'the flow');
  for (const el of all) {
    for (const [pattern, target] of Object.entries(el.on ?? {})) {
      assertExitPattern(pattern, `${owner}: step ${el.name}`);
      if (typeof target === 'string' && !RESERVED_TARGETS.has(target) && !names.has(target)) {
        throw new UsageError(`${owner}: step ${el.name}: transition "${pattern}" goes to unknown step ${target}`);
      }
      if (typeof target === 'object' && 'stop' in target && !names.has(target.stop)) {
        throw new UsageError(`${owner}: step ${el.name}: transition "${pattern}" restarts at unknown step ${target.stop}`);
      }
    }
  }
}

/** How a value that should have been something else is named in an error. */
function describeValue(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * The functions a step cannot run without, checked when the job is defined: TypeScript requires
 * them, but from JavaScript a missing one would load and fail each execution at run time (as
 * "def.writer is not a function").
 */
function checkStepFunctions<P>(where: string, el: FlowElement<P>): void {
  const need = (option: string, value: unknown, optional = false) => {
    if (optional && value === undefined) return;
    if (typeof value !== 'function') throw new UsageError(`${where}: ${option} must be a function, got ${describeValue(value)}`);
  };
  if (el.type === 'chunk') {
    if (typeof el.chunkSize !== 'number' && typeof el.chunkSize !== 'function') {
      throw new UsageError(`${where}: chunkSize must be a positive integer or a function of the step's context, got ${describeValue(el.chunkSize)}`);
    }
    need('reader (a function that makes the step\'s reader, e.g. reader: () => rangeReader(1, 10))', el.reader);
    need('writer (a function that makes the step\'s writer, e.g. writer: () => (items) => ...)', el.writer);
    need('processor', el.processor, true);
  }
  if (el.type === 'tasklet') need('tasklet', el.tasklet);
  if (el.type === 'decision') need('decide', el.decide);
  if (el.type === 'partitioned') need('partitioner', el.partitioner);
  if (el.type === 'split' && (!Array.isArray(el.flows) || el.flows.length === 0)) {
    throw new UsageError(`${where}: flows must be a non-empty array of flows (arrays of steps), got ${describeValue(el.flows)}`);
  }
}

/** The chunk step options of concurrent processing and the policy hooks. */
function validateChunkOptions<P>(where: string, el: SomeChunkStep<P>): void {
  const { skip, retry, processConcurrency } = el;
  if (skip && skip.limit === undefined && typeof skip.policy !== 'function') {
    throw new UsageError(`${where}: skip needs a limit or a policy function`);
  }
  if (skip?.policy !== undefined && typeof skip.policy !== 'function') {
    throw new UsageError(`${where}: skip policy must be a function ({ error, phase, skipCount, item }) => boolean`);
  }
  if (retry?.listeners !== undefined && !Array.isArray(retry.listeners)) {
    throw new UsageError(`${where}: retry listeners must be an array of { onRetry, onRetryExhausted } objects`);
  }
  if (processConcurrency !== undefined) {
    if (!Number.isInteger(processConcurrency) || processConcurrency < 1) {
      throw new UsageError(`${where}: processConcurrency must be a positive integer, got ${processConcurrency}`);
    }
    if (el.processInThreads) throw new UsageError(`${where}: give processConcurrency or processInThreads, not both (threads already process items in parallel)`);
    if (!el.processor) throw new UsageError(`${where}: processConcurrency needs a processor`);
  }
}

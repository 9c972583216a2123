import type { JobExecution, StepExecution } from '../core/model.ts';
import { lazyChild, type Logger } from '../core/logger.ts';
import type { Database } from '../repository/database.ts';
import type { Tx } from '../repository/tx.ts';
import type { JobDefinition, StepContext, TaskletContext } from '../core/job.ts';
import type { ParamsSchema } from '../core/params.ts';

/**
 * This process's hold on one running job execution: the ownership token every commit proves
 * (node id + epoch), and the signals that end it early.
 */
export interface ExecutionHandle {
  readonly db: Database;
  readonly execution: JobExecution;
  /** The job being run (its definition). */
  readonly job: JobDefinition<ParamsSchema>;
  readonly nodeId: number;
  readonly nodeName: string;
  readonly epoch: number;
  /**
   * Set when a graceful stop was requested: steps end at the next chunk boundary. Once set it
   * stays set (setting it false does nothing), and it aborts `stopSignal`.
   */
  stopRequested: boolean;
  /**
   * Set (with `stopRequested`) when this node stops the work to hand it over to another node (it
   * drains or shuts down): a STOPPED end is then written in the same transaction as the requeue
   * that lets another node resume it from its checkpoint, so that no reader ever sees it STOPPED
   * and not queued again (a manager would take a partition's lone STOPPED for a stop of the job).
   */
  handingOver: boolean;
  /** Aborted when a stop is requested or ownership is lost: what long tasklets listen to. */
  readonly stopSignal: AbortSignal;
  /** The error that failed the first failed step, for callers in this process (e.g. the CLI's exit code). */
  failure?: unknown;
  /** Aborted when ownership is lost: nothing more may be committed. */
  readonly lost: LazyAbort;
  /** The execution's logger: `baseLog` with the execution and job bound. */
  readonly log: Logger;
  /** The logger the execution's was made from: for handles of its partitions, which bind the same again. */
  readonly baseLog: Logger;
  /**
   * Whether a partitioned step's manager runs cluster-mode partitions itself. A cluster node
   * turns this off: its own claim loop runs partitions within the node's concurrency.
   */
  managerRunsPartitions: boolean;
  /** For a partition: the step execution whose own owner and epoch fence its commits. */
  readonly partition?: { readonly id: number; readonly epoch: number };
  /** Called after every commit with the step's committed counters (progress displays, metrics). */
  readonly onProgress?: (step: StepExecution) => void;
  /** Called once the execution's own work is done and only the writing of its end remains. */
  onFinishing?: () => void;
  /** The executions this one's job steps are running now (child jobs, in this process). */
  readonly children: Set<ExecutionHandle>;
}

/** The handle of execution `id` among `handles` or the child executions they run (job steps). */
export function findHandle(handles: Iterable<ExecutionHandle>, id: number): ExecutionHandle | undefined {
  for (const h of handles) {
    if (h.execution.id === id) return h;
    const child = findHandle(h.children, id);
    if (child) return child;
  }
  return undefined;
}

/**
 * An abort flag whose AbortSignal is made only when something asks for it. Most runs end without
 * anyone listening, and an AbortController with its signal costs a node a few microseconds per
 * execution (three per handle, thousands of executions a second).
 */
export interface LazyAbort {
  readonly aborted: boolean;
  /** The signal, made on first use, already aborted if the flag is. */
  readonly signal: AbortSignal;
  /** Aborts once; later calls do nothing. */
  abort(reason?: unknown): void;
}

/** A {@link LazyAbort}; `onAbort` runs once, when it is aborted. */
function lazyAbort(onAbort?: (reason: unknown) => void): LazyAbort {
  let controller: AbortController | undefined;
  let aborted = false;
  let why: unknown;
  return {
    get aborted() {
      return aborted;
    },
    get signal() {
      if (!controller) {
        controller = new AbortController();
        if (aborted) controller.abort(why);
      }
      return controller.signal;
    },
    abort(reason?: unknown) {
      if (aborted) return;
      aborted = true;
      why = reason ?? new DOMException('This operation was aborted', 'AbortError');
      controller?.abort(why);
      onAbort?.(why);
    },
  };
}

export function createHandle(
  db: Database,
  execution: JobExecution,
  node: { id: number; name: string },
  job: JobDefinition<ParamsSchema>,
  log: Logger,
  onProgress?: (step: StepExecution) => void,
  partition?: { id: number; epoch: number },
): ExecutionHandle {
  // stop or lost, whichever comes first (what AbortSignal.any gives, for less than it costs).
  const either = lazyAbort();
  const stop = lazyAbort((reason) => either.abort(reason));
  const lost = lazyAbort((reason) => either.abort(reason));
  return {
    db,
    execution,
    job,
    nodeId: node.id,
    nodeName: node.name,
    epoch: partition ? partition.epoch : execution.ownerEpoch,
    get stopRequested() {
      return stop.aborted;
    },
    set stopRequested(requested: boolean) {
      if (requested && !stop.aborted) stop.abort(new DOMException(`execution ${execution.id} was asked to stop`, 'AbortError'));
    },
    get stopSignal() {
      return either.signal;
    },
    handingOver: false,
    managerRunsPartitions: true,
    lost,
    log: lazyChild(log, { execution: execution.id, job: execution.jobName }),
    baseLog: log,
    onProgress,
    partition,
    children: new Set(),
  };
}

/** A step context's fields other than its signals, which {@link stepContext} adds. */
export type StepFields<P> = Omit<StepContext<P>, 'signal' | 'stopSignal' | 'partition'> & { readonly partition?: unknown };

/**
 * A step's context: `f`, and the handle's `signal` and `stopSignal` as getters, since a handle
 * makes its AbortSignals only when something asks for them (most short steps never do). Object
 * literals, here and in {@link taskletContext}: a spread would call the getters, and copying
 * property descriptors cost more than the signals.
 */
export function stepContext<P>(f: StepFields<P>, handle: ExecutionHandle): StepContext<P> {
  return {
    params: f.params,
    jobExecution: f.jobExecution,
    stepExecution: f.stepExecution,
    jobContext: f.jobContext,
    stepContext: f.stepContext,
    partition: f.partition,
    executionNumber: f.executionNumber,
    db: f.db,
    log: f.log,
    get signal() {
      return handle.lost.signal;
    },
    get stopSignal() {
      return handle.stopSignal;
    },
  };
}

/** A tasklet call's context: the step's `ctx` (its signals still made on first use) with the call's transaction. */
export function taskletContext<P>(ctx: StepContext<P>, tx: Tx): TaskletContext<P> {
  return {
    params: ctx.params,
    jobExecution: ctx.jobExecution,
    stepExecution: ctx.stepExecution,
    jobContext: ctx.jobContext,
    stepContext: ctx.stepContext,
    partition: ctx.partition,
    executionNumber: ctx.executionNumber,
    db: ctx.db,
    log: ctx.log,
    get signal() {
      return ctx.signal;
    },
    get stopSignal() {
      return ctx.stopSignal;
    },
    tx,
  };
}

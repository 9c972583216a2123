import type { JobExecution, StepExecution } from '../core/model.ts';
import { lazyChild, type Logger } from '../core/logger.ts';
import type { Database } from '../repository/database.ts';
import type { JobDefinition } from '../core/job.ts';
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
  readonly lost: AbortController;
  readonly log: Logger;
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

export function createHandle(
  db: Database,
  execution: JobExecution,
  node: { id: number; name: string },
  job: JobDefinition<ParamsSchema>,
  log: Logger,
  onProgress?: (step: StepExecution) => void,
  partition?: { id: number; epoch: number },
): ExecutionHandle {
  const stop = new AbortController();
  const lost = new AbortController();
  // stop or lost, whichever comes first (what AbortSignal.any gives, for less than it costs).
  const either = new AbortController();
  lost.signal.addEventListener('abort', () => either.abort(lost.signal.reason), { once: true });
  return {
    db,
    execution,
    job,
    nodeId: node.id,
    nodeName: node.name,
    epoch: partition ? partition.epoch : execution.ownerEpoch,
    get stopRequested() {
      return stop.signal.aborted;
    },
    set stopRequested(requested: boolean) {
      if (!requested || stop.signal.aborted) return;
      const reason = new DOMException(`execution ${execution.id} was asked to stop`, 'AbortError');
      stop.abort(reason);
      either.abort(reason);
    },
    stopSignal: either.signal,
    handingOver: false,
    managerRunsPartitions: true,
    lost,
    log: lazyChild(log, { execution: execution.id, job: execution.jobName }),
    onProgress,
    partition,
    children: new Set(),
  };
}

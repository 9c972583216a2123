import type { JobExecution, StepExecution } from '../core/model.ts';
import type { Logger } from '../core/logger.ts';
import type { Database } from '../repository/database.ts';

/**
 * This process's hold on one running job execution: the ownership token every commit proves
 * (node id + epoch), and the signals that end it early.
 */
export interface ExecutionHandle {
  readonly db: Database;
  readonly execution: JobExecution;
  readonly nodeId: number;
  readonly nodeName: string;
  readonly epoch: number;
  /** Set when a graceful stop was requested: steps end at the next chunk boundary. */
  stopRequested: boolean;
  /** The error that failed the first failed step, for callers in this process (e.g. the CLI's exit code). */
  failure?: unknown;
  /** Aborted when ownership is lost: nothing more may be committed. */
  readonly lost: AbortController;
  readonly log: Logger;
  /** Called after every commit with the step's committed counters (progress displays, metrics). */
  readonly onProgress?: (step: StepExecution) => void;
}

export function createHandle(
  db: Database,
  execution: JobExecution,
  node: { id: number; name: string },
  log: Logger,
  onProgress?: (step: StepExecution) => void,
): ExecutionHandle {
  return {
    db,
    execution,
    nodeId: node.id,
    nodeName: node.name,
    epoch: execution.ownerEpoch,
    stopRequested: false,
    lost: new AbortController(),
    log: log.child({ execution: execution.id, job: execution.jobName }),
    onProgress,
  };
}

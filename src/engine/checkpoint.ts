import { FencedError } from '../core/errors.ts';
import type { ExecutionContext, StepCounters } from '../core/model.ts';
import { counterParams } from '../repository/job-repository.ts';
import { SQL } from '../repository/sql.ts';
import type { Tx } from '../repository/tx.ts';
import type { ExecutionHandle } from './execution-handle.ts';

/** What one commit saves for a step, besides the writer's own work. */
export interface CheckpointState {
  stepExecutionId: number;
  counters: StepCounters;
  stepContext: ExecutionContext;
  jobContext: ExecutionContext;
}

export interface CommitResult<T> {
  value: T;
  /** An operator asked to stop: the step should end after this commit. */
  stopping: boolean;
}

/**
 * Runs `work` and the step's checkpoint in one transaction, fenced: the first statement proves
 * this node still owns the execution (owner + epoch, status running). If it does not, nothing
 * is written and FencedError is thrown. `prepare` runs inside the transaction after `work`, to
 * fill in the state to save (counters, reader positions) once the work succeeded.
 */
export async function commitFenced<T>(
  handle: ExecutionHandle,
  work: (tx: Tx) => Promise<T>,
  prepare: () => CheckpointState,
): Promise<CommitResult<T>> {
  if (handle.lost.signal.aborted) throw new FencedError(fencedMessage(handle));
  let lastJobContext: string | undefined;
  return handle.db.transaction(async (tx) => {
    const rows = await tx.query<{ status: string }>(SQL.fenceExecution, [handle.execution.id, handle.nodeId, handle.epoch]);
    if (rows.length === 0) {
      handle.lost.abort();
      throw new FencedError(fencedMessage(handle));
    }
    const value = await work(tx);
    const state = prepare();
    await tx.execute(SQL.checkpointStep, [state.stepExecutionId, ...counterParams(state.counters), JSON.stringify(state.stepContext)]);
    const jobContext = JSON.stringify(state.jobContext);
    if (jobContext !== savedJobContext.get(handle)) {
      await tx.execute(SQL.saveJobContext, [handle.execution.id, jobContext]);
      lastJobContext = jobContext;
    }
    return { value, stopping: rows[0].status === 'STOPPING' };
  }).then((result) => {
    if (lastJobContext !== undefined) savedJobContext.set(handle, lastJobContext);
    return result;
  });
}

/**
 * Runs `work` in a fenced transaction without a checkpoint (step and job endings). Returns
 * whether the execution is STOPPING.
 */
export async function runFenced<T>(handle: ExecutionHandle, work: (tx: Tx) => Promise<T>): Promise<T> {
  if (handle.lost.signal.aborted) throw new FencedError(fencedMessage(handle));
  return handle.db.transaction(async (tx) => {
    const rows = await tx.query<{ status: string }>(SQL.fenceExecution, [handle.execution.id, handle.nodeId, handle.epoch]);
    if (rows.length === 0) {
      handle.lost.abort();
      throw new FencedError(fencedMessage(handle));
    }
    return work(tx);
  });
}

// The job context as last committed, so an unchanged context is not rewritten every chunk.
const savedJobContext = new WeakMap<ExecutionHandle, string>();

export function rememberJobContext(handle: ExecutionHandle, context: ExecutionContext): void {
  savedJobContext.set(handle, JSON.stringify(context));
}

export function fencedMessage(handle: ExecutionHandle): string {
  return `execution ${handle.execution.id} is no longer owned by node ${handle.nodeName}: another node took it over; nothing more is committed here`;
}

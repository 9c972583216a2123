import { FencedError } from '../core/errors.ts';
import type { ExecutionContext, StepCounters } from '../core/model.ts';
import { counterParams } from '../repository/job-repository.ts';
import { FENCE_LOST_SQLSTATE } from '../repository/open.ts';
import { keepPrepared } from '../repository/prepared.ts';
import { SQL } from '../repository/sql.ts';
import type { Statement, Tx } from '../repository/tx.ts';
import type { ExecutionHandle } from './execution-handle.ts';
import { isConnectionError } from '../repository/connection-errors.ts';
import { sleep } from './fault-tolerance.ts';

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
 * Runs `work` and the step's checkpoint in one fenced transaction. `prepare` runs inside the
 * transaction after `work`, to fill in the state to save (counters, reader positions) once the
 * work succeeded. The fence comes last: within one transaction that proves ownership as well as
 * coming first. On PostgreSQL it is part of the checkpoint's own statement (see
 * SQL.checkpointFenced), sent together with the COMMIT: a chunk costs one round trip more than
 * its writer's own statements. A connection lost mid-commit is retried once the database
 * answers again; an uncertain COMMIT is resolved by the step's committed commit count.
 *
 * `stepContext` is the step's ExecutionContext in memory, which `work` and `prepare` may advance
 * (reader positions, a tasklet's own state). If the transaction does not commit (an error in the
 * work, or the COMMIT itself refused: a deferred constraint, a full disk), it is put back as it
 * was, as Spring Batch does: else the step's end would save a context ahead of what committed,
 * and a restart would pass over the rolled-back work.
 */
export async function commitFenced<T>(
  handle: ExecutionHandle,
  work: (tx: Tx) => Promise<T>,
  prepare: () => CheckpointState,
  stepContext?: ExecutionContext,
): Promise<CommitResult<T>> {
  const before = stepContext && { ...stepContext };
  try {
    return await commitRetryingDisconnects(handle, work, prepare);
  } catch (error) {
    if (stepContext) restoreContext(stepContext, before!);
    throw error;
  }
}

/** Makes `context` hold exactly what `saved` holds (the same object: the step's code keeps it). */
export function restoreContext(context: ExecutionContext, saved: ExecutionContext): void {
  for (const key of Object.keys(context)) if (!Object.hasOwn(saved, key)) delete context[key];
  Object.assign(context, saved);
}

/** The transaction of {@link commitFenced}, tried again while the database is unreachable. */
async function commitRetryingDisconnects<T>(
  handle: ExecutionHandle,
  work: (tx: Tx) => Promise<T>,
  prepare: () => CheckpointState,
): Promise<CommitResult<T>> {
  let expected: { stepExecutionId: number; commitCount: number; value: T } | undefined;
  let lastJobContext: string | undefined;
  const result = await retryOnDisconnect(
    handle,
    async () => {
      assertOwned(handle);
      let status: string | undefined;
      const { value, rows } = await handle.db
        .transactionEndingWith<T, { status: string }>(async (tx) => {
          const value = await work(tx);
          const state = prepare();
          expected = { stepExecutionId: state.stepExecutionId, commitCount: state.counters.commitCount, value };
          const jobContext = JSON.stringify(state.jobContext);
          lastJobContext = undefined;
          if (!handle.partition && jobContext !== savedJobContext.get(handle)) {
            await tx.execute(SQL.saveJobContext, [handle.execution.id, jobContext]);
            lastJobContext = jobContext;
          }
          const fence = fenceOf(handle, tx);
          const counters = counterParams(state.counters);
          const context = JSON.stringify(state.stepContext);
          // PostgreSQL: one statement, sent with the COMMIT; it fails if the fence finds nothing.
          if (tx.dialect === 'postgres') {
            return { value, last: { sql: CHECKPOINT.get(fence.sql)!, params: [...fence.params, state.stepExecutionId, ...counters, context] } };
          }
          status = await fenced(handle, tx, await tx.query<{ status: string }>(fence.sql, fence.params));
          return { value, last: { sql: SQL.checkpoint, params: [...counters, context, state.stepExecutionId] } };
        })
        .catch((err: unknown) => {
          if ((err as { code?: string }).code === FENCE_LOST_SQLSTATE) lostOwnership(handle);
          throw err;
        });
      return { value, stopping: (status ?? rows[0].status) === 'STOPPING' };
    },
    async () => {
      if (!expected) return undefined;
      const rows = await handle.db.query<{ commit_count: number }>(SQL.stepCommitCount, [expected.stepExecutionId]);
      return rows.length && Number(rows[0].commit_count) === expected.commitCount ? { value: expected.value, stopping: false } : undefined;
    },
  );
  if (lastJobContext !== undefined) savedJobContext.set(handle, lastJobContext);
  return result;
}

/**
 * Runs `work` in a transaction whose first statement is the fence: it proves this node still
 * owns the execution (owner + epoch, status running). If it does not, nothing is written and
 * FencedError is thrown. `work` gets the execution's status (STARTED, or STOPPING when an
 * operator asked it to stop).
 */
export async function runFenced<T>(handle: ExecutionHandle, work: (tx: Tx, status: string) => Promise<T>): Promise<T> {
  assertOwned(handle);
  return handle.db.transaction(async (tx) => {
    const fence = fenceOf(handle, tx);
    const status = await fenced(handle, tx, await tx.query<{ status: string }>(fence.sql, fence.params));
    return work(tx, status);
  });
}

/**
 * The query proving ownership: of the job execution, or of a partition's own step execution.
 * On SQLite it only reads: BEGIN IMMEDIATE already excludes every other writer until COMMIT.
 */
function fenceOf(handle: ExecutionHandle, tx: Tx): Statement {
  const sqlite = tx.dialect === 'sqlite';
  return handle.partition
    ? { sql: sqlite ? SQL.fencePartitionCheck : SQL.fencePartition, params: [handle.partition.id, handle.nodeId, handle.epoch] }
    : { sql: sqlite ? SQL.fenceExecutionCheck : SQL.fenceExecution, params: [handle.execution.id, handle.nodeId, handle.epoch] };
}

// PostgreSQL's checkpoint statement for each fence: one round trip, kept prepared.
const CHECKPOINT = new Map<string, string>(
  [SQL.fenceExecution, SQL.fencePartition].map((f) => [f, keepPrepared(SQL.checkpointFenced(f))]),
);

/**
 * The fence's verdict: the execution's status, or FencedError (and the handle marked lost) when
 * this node no longer owns it. On SQLite a commit also renews the node's lease: it already
 * holds the database's only write lock, which a separate heartbeat would have to wait for.
 */
async function fenced(handle: ExecutionHandle, tx: Tx, rows: { status: string }[]): Promise<string> {
  if (rows.length === 0) lostOwnership(handle);
  if (tx.dialect === 'sqlite' && leaseIsStale(handle.nodeId)) await tx.execute(SQL.heartbeat, [handle.nodeId]);
  return rows[0].status;
}

// When each node's lease was last renewed by a commit in this process (SQLite).
const renewedAt = new Map<number, number>();
const RENEW_EVERY_MS = 250;

function leaseIsStale(nodeId: number): boolean {
  const now = performance.now();
  if (now - (renewedAt.get(nodeId) ?? -Infinity) < RENEW_EVERY_MS) return false;
  renewedAt.set(nodeId, now);
  return true;
}

/**
 * Runs `attempt`, and while it fails because the database is unreachable, waits (with backoff)
 * and tries again, for as long as this node may still own the execution. Before each retry,
 * `committedAnyway` may report that the failed attempt did commit (its outcome was unknown).
 */
export async function retryOnDisconnect<T>(
  handle: ExecutionHandle,
  attempt: () => Promise<T>,
  committedAnyway: () => Promise<T | undefined> = async () => undefined,
): Promise<T> {
  const giveUpAt = Date.now() + RECONNECT_FOR_MS;
  let delay = 100;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (!isConnectionError(err) || handle.lost.aborted || Date.now() > giveUpAt) throw err;
      handle.log.warn({ err: (err as Error).message }, 'database unreachable during a commit; retrying when it is back');
    }
    for (;;) {
      await sleep(delay, handle.lost.signal);
      delay = Math.min(delay * 2, 5000);
      if (handle.lost.aborted) throw new FencedError(fencedMessage(handle));
      try {
        const done = await committedAnyway();
        if (done !== undefined) return done;
        break;
      } catch (err) {
        if (!isConnectionError(err) || Date.now() > giveUpAt) throw err;
      }
    }
  }
}

/** How long a running execution waits for its database to come back before failing. */
export const RECONNECT_FOR_MS = 10 * 60_000;

// The job context as last committed, so an unchanged context is not rewritten every chunk.
const savedJobContext = new WeakMap<ExecutionHandle, string>();

export function rememberJobContext(handle: ExecutionHandle, context: ExecutionContext): void {
  savedJobContext.set(handle, JSON.stringify(context));
}

/** Whether the job's context differs from what was last committed for this execution (not a partition's). */
export function jobContextChanged(handle: ExecutionHandle, context: ExecutionContext): boolean {
  return !handle.partition && JSON.stringify(context) !== savedJobContext.get(handle);
}

/** Throws FencedError if this node already knows it lost the execution. */
export function assertOwned(handle: ExecutionHandle): void {
  if (handle.lost.aborted) throw new FencedError(fencedMessage(handle));
}

/** A fence found another owner: marks the handle lost (its local work stops) and throws FencedError. */
export function lostOwnership(handle: ExecutionHandle): never {
  handle.lost.abort();
  throw new FencedError(fencedMessage(handle));
}

export function fencedMessage(handle: ExecutionHandle): string {
  return `execution ${handle.execution.id} is no longer owned by node ${handle.nodeName}: another node took it over; nothing more is committed here`;
}

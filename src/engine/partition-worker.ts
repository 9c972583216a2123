import { EventEmitter } from 'node:events';
import { FencedError, errorMessage } from '../core/errors.ts';
import { allElements, runnableWorker, type FlowElement, type JobDefinition, type SomePartitionedStep } from '../core/job.ts';
import { lazyChild, type Logger } from '../core/logger.ts';
import { PARTITION_SUFFIX } from '../core/partitions.ts';
import { paramsFromJson, type ParamsSchema } from '../core/params.ts';
import type { JobExecution, StepExecution } from '../core/model.ts';
import { storedDescription, type BatchStatus } from '../core/status.ts';
import type { Statement, Tx } from '../repository/tx.ts';
import { retryingConnectionErrors } from '../repository/connection-errors.ts';
import type { Database } from '../repository/database.ts';
import { createJobExplorer, toStepExecution } from '../repository/job-repository.ts';
import { SQL } from '../repository/sql.ts';
import { createHandle, stepContext, type ExecutionHandle } from './execution-handle.ts';
import type { RunStep } from './run-types.ts';

/** Partition endings seen by this process (local runs and cluster notifications), by manager id. */
export const partitionEvents = new EventEmitter<{ ended: [managerId: number] }>();
partitionEvents.setMaxListeners(0);

/** Finds the partitioned step a partition belongs to, by the partition's step name. */
export function partitionedStepOf(job: JobDefinition<ParamsSchema>, partitionName: string): SomePartitionedStep<unknown> | undefined {
  const manager = partitionName.replace(PARTITION_SUFFIX, '');
  for (const el of allElements(job.flow as FlowElement<unknown>[])) if (el.type === 'partitioned' && el.name === manager) return el;
  return undefined;
}

/** Claims queued partitions for this node: of any manager, or of one. */
export async function claimPartitions(
  db: Database,
  node: { id: number; name: string },
  jobNames: string[],
  limit: number,
  managerId?: number,
): Promise<number[]> {
  if (limit <= 0) return [];
  const names = db.dialect === 'postgres' ? jobNames : JSON.stringify(jobNames);
  const params: unknown[] = [node.id, node.name, names, limit];
  if (managerId !== undefined) params.push(managerId);
  const rows = await db.transaction((tx) => tx.query<{ id: number }>(SQL.claimPartitions(db.dialect, managerId !== undefined), params));
  return rows.map((r) => Number(r.id));
}

/**
 * Runs one claimed partition: the partitioned step's worker step, as a step execution of its
 * own (run by `runStep`), fenced on the partition's owner and epoch. Tells the manager when it
 * has ended, and `onProgress` (the manager's, when it runs the partition) after each commit.
 */
export async function runPartition(
  db: Database,
  node: { id: number; name: string },
  job: JobDefinition<ParamsSchema>,
  partitionId: number,
  log: Logger,
  runStep: RunStep,
  onHandle?: (handle: ExecutionHandle) => void,
  onProgress?: (step: StepExecution) => void,
): Promise<void> {
  const explorer = createJobExplorer(db);
  let row: Record<string, unknown> | undefined;
  let execution: JobExecution | undefined;
  try {
    row = (await db.query<Record<string, unknown>>(SQL.getPartition, [partitionId]))[0];
    execution = row && (await explorer.getExecution(Number(row.job_execution_id)));
  } catch (err) {
    // Claimed, but it could not even be read (no connection): not this node's to keep.
    log.error({ err: errorMessage(err), partition: partitionId }, 'a claimed partition could not start');
    await releasePartition(db, node, partitionId, `partition ${partitionId} could not start on node ${node.name}: ${errorMessage(err)}`, log);
    partitionEvents.emit('ended', Number(row?.manager_id ?? 0));
    return;
  }
  if (!row) return;
  const step = toStepExecution(row);
  const managerId = Number(row.manager_id);
  if (!execution) return;
  const def = partitionedStepOf(job, step.stepName);
  const handle = createHandle(db, execution, node, job, log, onProgress, { id: partitionId, epoch: Number(row.owner_epoch) });
  onHandle?.(handle);
  try {
    if (!def) throw new Error(`job ${job.name} has no partitioned step for partition ${step.stepName}`);
    const [{ n: executionNumber }] = await db.query<{ n: number }>(SQL.executionNumber, [execution.instanceId, execution.id]);
    const ctx = stepContext<unknown>({
      params: paramsFromJson(job.name, job.params, execution.params),
      jobExecution: execution,
      stepExecution: step,
      // Partitions read the job's context; only the manager's execution writes it.
      jobContext: { ...execution.context },
      stepContext: step.context,
      // A copy: what the worker writes into its stepContext (its checkpoints) does not change it.
      partition: structuredClone(step.context),
      executionNumber: Number(executionNumber),
      db,
      log: lazyChild(handle.log, { step: step.stepName }),
    }, handle);
    ctx.log.info(`partition ${step.stepName} started on ${node.name}`);
    await runStep(runnableWorker(def), ctx, handle, step);
    // Ended without recording its end (fenced because its execution ended meanwhile, say).
    await releasePartition(db, node, partitionId, `partition ${step.stepName} stopped on node ${node.name} without an end`, handle.log);
  } catch (err) {
    if (err instanceof FencedError) handle.log.warn(err.message);
    else handle.log.error({ err: errorMessage(err) }, `partition ${step.stepName} could not run`);
    // Whatever stopped it (no connection, its execution ended meanwhile), a partition this node
    // no longer runs must not stay STARTED under its name: a no-op if it ended or changed owner.
    await releasePartition(db, node, partitionId, `partition ${step.stepName} could not run on node ${node.name}: ${errorMessage(err)}`, handle.log);
  } finally {
    partitionEvents.emit('ended', managerId);
    if (db.dialect === 'postgres') await db.query(SQL.notifyPartition, [String(managerId)]).catch(() => undefined);
  }
}

/**
 * The statement that ends the partitions of execution `executionId` still queued when it ends
 * (or stops) as `status`: STOPPED when it stopped, else FAILED, which (like STOPPED) a restart of
 * the instance runs again from the partition's context; ABANDONED only with an abandoned execution.
 */
export function endQueuedPartitions(executionId: number, status: BatchStatus, why = `ended ${status}`): Statement {
  return { sql: SQL.endQueuedPartitions, params: [executionId, queuedEndStatus(status), `not run: job execution ${executionId} ${why}`] };
}

/** What a queued partition becomes when its execution ends as `status`. */
export function queuedEndStatus(status: BatchStatus): 'STOPPED' | 'FAILED' | 'ABANDONED' {
  return status === 'STOPPED' || status === 'STOPPING' ? 'STOPPED' : status === 'ABANDONED' ? 'ABANDONED' : 'FAILED';
}

/**
 * Queues a retry of a partition that just ended (within the transaction of its end), from its
 * checkpoint, for any node to claim: nothing when its execution or manager step ended meanwhile.
 */
export async function requeuePartition(tx: Tx, partitionId: number): Promise<void> {
  const requeued = await tx.query(SQL.requeuePartition, [partitionId]);
  if (requeued.length && tx.dialect === 'postgres') await tx.query(SQL.notifyLaunch, ['partition']);
}

/** How long releasing a partition this node cannot run keeps trying while connections fail. */
const RELEASE_FOR_MS = 5 * 60_000;

/**
 * A partition this node claimed but could not run to a recorded end (it could not connect, or
 * could not record the failure): fails it, if it is still this node's, and queues its retry from
 * its last checkpoint, so that the repository never says a live node runs what it does not.
 */
export async function releasePartition(db: Database, node: { id: number; name: string }, partitionId: number, reason: string, log: Logger): Promise<void> {
  try {
    await retryingConnectionErrors(
      () =>
        db.transaction(async (tx) => {
          if (await tx.execute(SQL.releasePartition, [partitionId, storedDescription(reason), node.id])) await requeuePartition(tx, partitionId);
        }),
      RELEASE_FOR_MS,
    );
  } catch (err) {
    log.error({ err: errorMessage(err), partition: partitionId }, 'could not release a partition this node cannot run');
  }
}

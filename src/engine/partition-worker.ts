import { EventEmitter } from 'node:events';
import { FencedError, errorMessage } from '../core/errors.ts';
import { allElements, type FlowElement, type JobDefinition, type PartitionedStepDefinition, type StepContext } from '../core/job.ts';
import type { Logger } from '../core/logger.ts';
import { paramsFromJson, type ParamsSchema } from '../core/params.ts';
import type { Database } from '../repository/database.ts';
import { createJobExplorer, toStepExecution } from '../repository/job-repository.ts';
import { SQL } from '../repository/sql.ts';
import { createHandle, type ExecutionHandle } from './execution-handle.ts';
import type { RunStep } from './run-types.ts';

/** Partition endings seen by this process (local runs and cluster notifications), by manager id. */
export const partitionEvents = new EventEmitter<{ ended: [managerId: number] }>();
partitionEvents.setMaxListeners(0);

const PARTITION_SUFFIX = /:partition\d+$/;

/** Finds the partitioned step a partition belongs to, by the partition's step name. */
export function partitionedStepOf(job: JobDefinition<ParamsSchema>, partitionName: string): PartitionedStepDefinition<unknown> | undefined {
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
 * has ended.
 */
export async function runPartition(
  db: Database,
  node: { id: number; name: string },
  job: JobDefinition<ParamsSchema>,
  partitionId: number,
  log: Logger,
  runStep: RunStep,
  onHandle?: (handle: ExecutionHandle) => void,
): Promise<void> {
  const explorer = createJobExplorer(db);
  const row = (await db.query<Record<string, unknown>>(SQL.getPartition, [partitionId]))[0];
  if (!row) return;
  const step = toStepExecution(row);
  const managerId = Number(row.manager_id);
  const execution = (await explorer.getExecution(step.jobExecutionId))!;
  const def = partitionedStepOf(job, step.stepName);
  const handle = createHandle(db, execution, node, job, log, undefined, { id: partitionId, epoch: Number(row.owner_epoch) });
  onHandle?.(handle);
  try {
    if (!def) throw new Error(`job ${job.name} has no partitioned step for partition ${step.stepName}`);
    const [{ n: executionNumber }] = await db.query<{ n: number }>(SQL.executionNumber, [execution.instanceId, execution.id]);
    const ctx: StepContext<unknown> = {
      params: paramsFromJson(job.name, job.params, execution.params),
      jobExecution: execution,
      stepExecution: step,
      // Partitions read the job's context; only the manager's execution writes it.
      jobContext: { ...execution.context },
      stepContext: step.context,
      executionNumber: Number(executionNumber),
      db,
      signal: handle.lost.signal,
      stopSignal: handle.stopSignal,
      log: handle.log.child({ step: step.stepName }),
    };
    ctx.log.info(`partition ${step.stepName} started on ${node.name}`);
    await runStep(def.worker, ctx, handle, step);
  } catch (err) {
    if (err instanceof FencedError) handle.log.warn(err.message);
    else handle.log.error({ err: errorMessage(err) }, `partition ${step.stepName} could not run`);
  } finally {
    partitionEvents.emit('ended', managerId);
    if (db.dialect === 'postgres') await db.query(SQL.notifyPartition, [String(managerId)]).catch(() => undefined);
  }
}

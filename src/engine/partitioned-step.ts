import type { SomePartitionedStep, StepContext } from '../core/job.ts';
import { ZERO_COUNTERS, type StepExecution } from '../core/model.ts';
import { isRunning, worstStatus, type BatchStatus } from '../core/status.ts';
import { toStepExecution } from '../repository/job-repository.ts';
import { SQL } from '../repository/sql.ts';
import { retryOnDisconnect, runFenced } from './checkpoint.ts';
import type { ExecutionHandle } from './execution-handle.ts';
import type { RunStep } from './run-types.ts';
import { addCounters } from './chunk-step.ts';
import { claimPartitions, partitionEvents, runPartition } from './partition-worker.ts';
import { localProcessLauncher, type LaunchedWorkers } from './worker-launcher.ts';
import { FencedError, errorMessage } from '../core/errors.ts';
import { redactUrls } from '../core/redact.ts';
import { latestPartitions } from '../core/partitions.ts';

type Row = Record<string, unknown>;

/** How often the manager re-reads its partitions when no notification arrives. */
const RECHECK_MS = 250;

/**
 * The manager of a partitioned step. It queues one partition per context the partitioner
 * returns (on a restart: only the partitions that did not complete, from their checkpoints),
 * runs partitions itself up to its concurrency while other nodes claim the rest, and waits,
 * woken by each partition's end. Its counters are the partitions' sums and its status the worst
 * of theirs.
 */
export async function runPartitionedStep<P>(
  def: SomePartitionedStep<P>,
  ctx: StepContext<P>,
  handle: ExecutionHandle,
  step: StepExecution,
  runStep: RunStep,
): Promise<'COMPLETED' | 'STOPPED'> {
  const db = handle.db;
  const prefix = `${step.stepName}:partition`;
  const plan = await planPartitions(def, ctx, handle, prefix);
  const target = def.mode === 'local' ? handle.nodeName : null;
  await retryOnDisconnect(handle, () =>
    runFenced(handle, async (tx) => {
      for (const p of plan) await tx.query(SQL.insertPartition, [handle.execution.id, p.name, JSON.stringify(p.context), step.id, target]);
      if (tx.dialect === 'postgres') await tx.query(SQL.notifyLaunch, [handle.execution.jobName]);
    }),
  );
  ctx.log.info({ partitions: plan.length, mode: def.mode ?? 'cluster' }, `step ${step.stepName}: ${plan.length} partitions queued`);

  const concurrency = def.concurrency ?? 4;
  const deadline = def.timeoutMs === undefined ? Infinity : Date.now() + def.timeoutMs;
  const mine = new Set<Promise<void>>();
  const handles = new Set<ExecutionHandle>();
  const node = { id: handle.nodeId, name: handle.nodeName };
  let wake: () => void = () => undefined;
  const onEnded = (managerId: number) => managerId === step.id && wake();
  partitionEvents.on('ended', onEnded);
  let workers: LaunchedWorkers | undefined;
  // Set once every partition has ended, or been ended (the timeout): nothing is left queued.
  let settled = false;
  const stopQueued = (why: string) =>
    retryOnDisconnect(handle, () =>
      runFenced(handle, (tx) => tx.execute(SQL.endQueuedPartitionsOfManager, [step.id, 'STOPPED', `not run: ${why}`])),
    );
  try {
    workers = await launchWorkers(def, ctx, handle, plan.length, concurrency);
    for (;;) {
      if (handle.lost.aborted) break;
      // Asked to stop: no partition starts any more; the queued ones end STOPPED (a stop request
      // ended those queued then already; these were queued again since, after a failover), and
      // the running ones stop at their next chunk.
      const stopping = handle.stopRequested;
      const free = stopping ? 0 : def.mode === 'local' || handle.managerRunsPartitions ? concurrency - mine.size : 0;
      for (const id of await claimPartitions(db, node, [handle.execution.jobName], free, step.id)) {
        let own: ExecutionHandle | undefined;
        const run: Promise<void> = runPartition(db, node, handle.job, id, handle.baseLog, runStep, (h) => handles.add((own = h)), handle.onProgress).finally(() => {
          mine.delete(run);
          if (own) handles.delete(own);
          wake(); // a slot is free now: claim the next partition without waiting for the re-check
        });
        mine.add(run);
      }
      const all = (await db.query<Row>(SQL.partitionsOfManager, [step.id])).map(toStepExecution);
      const partitions = latestPartitions(all);
      if (stopping && partitions.some((p) => p.status === 'STARTING')) {
        await stopQueued(`job execution ${handle.execution.id} was stopped`);
        continue;
      }
      if (partitions.every((p) => !isRunning(p.status))) {
        settled = true;
        return conclude(step, partitions, all);
      }
      if (Date.now() > deadline) {
        // End the unfinished partitions in the repository (their owners are fenced from now on),
        // drop the ones running here, and fail the step with what the others committed.
        settled = true;
        const reason = `timed out: step ${step.stepName} allows its partitions ${def.timeoutMs} ms`;
        const open = await retryOnDisconnect(handle, () =>
          runFenced(handle, (tx) => tx.query<{ step_name: string }>(SQL.timeOutPartitions, [step.id, reason])),
        );
        for (const h of handles) h.lost.abort();
        mine.clear();
        const ended = (await db.query<Row>(SQL.partitionsOfManager, [step.id])).map(toStepExecution);
        Object.assign(step, ended.reduce((sum, p) => addCounters(sum, p), { ...ZERO_COUNTERS }));
        throw new Error(
          `partitions of step ${step.stepName} did not all end within ${def.timeoutMs} ms: ` +
            `${open.map((r) => r.step_name).join(', ')} unfinished`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(RECHECK_MS, Math.max(0, deadline - Date.now())));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return 'STOPPED';
  } catch (error) {
    // The step fails before its partitions all ended (its workers' count, its repository reads):
    // the queued ones would wait under an ended step, claimable while the job runs on.
    // The running ones end FAILED too, as at the timeout: their owners are fenced from now on, so
    // none goes on writing while the flow moves past this step.
    if (!settled && !(error instanceof FencedError)) {
      const why = `step ${step.stepName} of job execution ${handle.execution.id} failed: ${redactUrls(errorMessage(error))}`;
      await retryOnDisconnect(handle, () =>
        runFenced(handle, async (tx) => {
          await tx.execute(SQL.endQueuedPartitionsOfManager, [step.id, 'FAILED', `not run: ${why}`]);
          await tx.query(SQL.timeOutPartitions, [step.id, why]);
        }),
      ).catch((err: unknown) => ctx.log.warn({ err: errorMessage(err) }, `step ${step.stepName}: ending its partitions failed`));
      for (const h of handles) h.lost.abort();
    }
    throw error;
  } finally {
    partitionEvents.off('ended', onEnded);
    const stopping = workers?.stop().catch((err) => ctx.log.warn({ err: errorMessage(err) }, `step ${step.stepName}: stopping its workers failed`));
    await Promise.allSettled([...mine, stopping]);
  }
}

/**
 * Starts the step's elastic workers (`def.workers`), if any: never more than there are
 * partitions. A launch that fails is logged, and the partitions run on the nodes there are.
 */
async function launchWorkers<P>(
  def: SomePartitionedStep<P>,
  ctx: StepContext<P>,
  handle: ExecutionHandle,
  partitions: number,
  concurrency: number,
): Promise<LaunchedWorkers | undefined> {
  if (!def.workers || def.mode === 'local') return undefined;
  const { count } = def.workers;
  const wanted = Math.min(typeof count === 'function' ? count(ctx) : count, partitions);
  if (!(wanted >= 1)) return undefined;
  try {
    return await (def.workers.launcher ?? localProcessLauncher()).launch({
      workers: Math.floor(wanted),
      db: handle.db.connectUrl,
      config: process.env.NIGHTSHIFT_CONFIG,
      jobs: [handle.execution.jobName],
      name: handle.nodeName,
      concurrency: def.workers.concurrency ?? concurrency,
      log: ctx.log,
    });
  } catch (err) {
    ctx.log.error({ err: errorMessage(err) }, `step ${ctx.stepExecution.stepName}: launching ${wanted} workers failed; running on the nodes there are`);
    return undefined;
  }
}

/** The partitions to queue: new ones from the partitioner, or on a restart the unfinished ones. */
async function planPartitions<P>(
  def: SomePartitionedStep<P>,
  ctx: StepContext<P>,
  handle: ExecutionHandle,
  prefix: string,
): Promise<{ name: string; context: object }[]> {
  const rows = await handle.db.query<Row>(SQL.partitionsOfInstance, [handle.execution.instanceId, `${prefix}%`]);
  // LIKE is only a first filter: `_` is a wildcard (a_b matches a.b's partitions) and SQLite's
  // LIKE ignores case. Keep this step's own partitions only.
  const own = rows.map(toStepExecution).filter((p) => p.stepName.startsWith(prefix) && /^\d+$/.test(p.stepName.slice(prefix.length)));
  const latest = latestPartitions(own);
  if (latest.length > 0) {
    return latest
      .filter((p) => p.status !== 'COMPLETED')
      .map((p) => ({ name: p.stepName, context: p.context }));
  }
  const gridSize = typeof def.gridSize === 'function' ? def.gridSize(ctx) : (def.gridSize ?? 4);
  const contexts = await def.partitioner({ ...ctx, gridSize });
  if (!Array.isArray(contexts) || contexts.length === 0) {
    throw new Error(`the partitioner of step ${ctx.stepExecution.stepName} returned no partitions`);
  }
  return contexts.map((context, i) => ({ name: `${prefix}${i}`, context }));
}

/**
 * Sums the counters of every partition execution (a failed-over partition's committed work
 * included) into the manager, and ends it with the worst status of each partition's newest one.
 */
function conclude(step: StepExecution, partitions: StepExecution[], all: StepExecution[]): 'COMPLETED' | 'STOPPED' {
  Object.assign(step, all.reduce((sum, p) => addCounters(sum, p), { ...ZERO_COUNTERS }));
  const worst: BatchStatus = worstStatus(partitions.map((p) => p.status));
  if (worst === 'COMPLETED') return 'COMPLETED';
  if (worst === 'STOPPED') return 'STOPPED';
  const failed = partitions.filter((p) => p.status !== 'COMPLETED' && p.status !== 'STOPPED');
  throw new Error(
    `${failed.length} of ${partitions.length} partitions failed: ` +
      failed.map((p) => `${p.stepName} ${p.status}${p.exitStatus.description ? ` (${p.exitStatus.description})` : ''}`).join('; '),
  );
}

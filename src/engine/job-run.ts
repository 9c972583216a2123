import { FencedError, errorMessage } from '../core/errors.ts';
import { hasPartitionedStep, type JobDefinition } from '../core/job.ts';
import type { ExecutionContext, StepExecution } from '../core/model.ts';
import { paramsFromJson, type ParamsSchema } from '../core/params.ts';
import { exitStatus, storedExitStatus, type BatchStatus, type ExitStatus } from '../core/status.ts';
import { counterParams, type JobExplorer } from '../repository/job-repository.ts';
import { SQL } from '../repository/sql.ts';
import { fencedMessage, rememberJobContext, retryOnDisconnect } from './checkpoint.ts';
import { sleep } from './fault-tolerance.ts';
import type { ExecutionHandle } from './execution-handle.ts';
import { runFlow, RESTART_AT } from './flow.ts';
import type { JobRun, StepEnd } from './run-types.ts';
import type { Statement } from '../repository/tx.ts';
import { commitPending, commitWithPending } from './step-runner.ts';
import { endQueuedPartitions } from './partition-worker.ts';

/**
 * Runs a job execution that this process owns, from its flow's start (or its restart point)
 * to the end, and records how it ended. A lost ownership (fencing) ends it without writing.
 * `firstStep` is the first step's execution when the claim started it already. Resolves with
 * whether this process recorded the end (false: fenced, what the repository holds is others' doing).
 */
export async function runJobExecution(
  def: JobDefinition<ParamsSchema>,
  handle: ExecutionHandle,
  explorer: JobExplorer,
  firstStep?: StepExecution,
): Promise<boolean> {
  const execution = handle.execution;
  const executionNumber =
    execution.executionNumber ??
    Number((await handle.db.query<{ n: number }>(SQL.executionNumber, [execution.instanceId, execution.id]))[0].n);
  const jobContext: ExecutionContext = { ...execution.context };
  rememberJobContext(handle, jobContext);
  // Parameters stored at launch may no longer fit the job (its definition changed since): the
  // execution then fails like any other error, instead of staying STARTED.
  let params: Record<string, unknown> = execution.params;
  let badParams: unknown;
  try {
    params = paramsFromJson(def.name, def.params, execution.params);
  } catch (error) {
    badParams = error;
  }
  const run: JobRun<Record<string, unknown>> = {
    def,
    handle,
    explorer,
    params,
    jobContext,
    executionNumber,
    startedSteps: new Set(),
    pending: [],
    deferEnds: true,
    firstStep,
    runJob: runJobExecution,
  };
  handle.log.info({ params: execution.params }, `job ${def.name} execution ${execution.id} started on ${handle.nodeName}`);
  let status: 'COMPLETED' | 'FAILED' | 'STOPPED';
  let exit: ExitStatus;
  try {
    if (badParams !== undefined) throw badParams;
    for (const l of def.listeners) await l.beforeJob?.(execution, run.params);
    const restartAt = typeof jobContext[RESTART_AT] === 'string' ? (jobContext[RESTART_AT] as string) : undefined;
    delete jobContext[RESTART_AT];
    const result = await runFlow(def.flow, run, restartAt);
    status = result.status === 'COMPLETED' ? 'COMPLETED' : result.status === 'STOPPED' ? 'STOPPED' : 'FAILED';
    exit = result.exitStatus;
    // A flow resumed at a stop transition's target keeps that restart point until it gets past it.
    const next = result.restartAt ?? (result.status !== 'COMPLETED' ? restartAt : undefined);
    if (next) jobContext[RESTART_AT] = next;
  } catch (error) {
    if (error instanceof FencedError) {
      handle.log.warn(error.message);
      return false;
    }
    status = 'FAILED';
    exit = exitStatus('FAILED', errorMessage(error));
    handle.log.error({ err: error }, `job ${def.name} failed: ${errorMessage(error)}`);
  }
  execution.status = status;
  execution.exitStatus = exit = storedExitStatus(exit);
  // A stop requested before the flow began: the step started by the claim never ran.
  if (run.firstStep) run.pending.push(endUnrun(run.firstStep, status, exit));
  try {
    // afterJob listeners see every step ended, as they always did.
    if (def.listeners.some((l) => l.afterJob)) await commitPending(run);
  } catch (error) {
    if (!(error instanceof FencedError)) throw error;
    handle.log.warn(error.message);
    return false;
  }
  try {
    for (const l of def.listeners) await l.afterJob?.(execution, run.params);
  } catch (error) {
    execution.status = status = 'FAILED';
    execution.exitStatus = exit = exitStatus('FAILED', `afterJob listener failed: ${errorMessage(error)}`);
  }
  execution.exitStatus = storedExitStatus(execution.exitStatus);
  handle.onFinishing?.();
  const partitioned = hasPartitionedStep(def.flow);
  const recordEnd = () =>
    retryOnDisconnect(
      handle,
      async () => {
        await commitWithPending(run, {
          sql: SQL.finishExecution,
          endingStep: SQL.finishExecutionEndingStep,
          endingSteps: SQL.finishExecutionsEndingSteps,
          params: [
            execution.id, handle.nodeId, handle.epoch, execution.status, execution.exitStatus.code,
            execution.exitStatus.description, JSON.stringify(jobContext),
          ],
          also: [
            // Partitions no node claimed end with their execution, in the same transaction: none
            // stays queued under an ended execution (each manager ends its own too; this is the
            // guarantee, whatever ended the flow).
            ...(partitioned ? [endQueuedPartitions(execution.id, execution.status)] : []),
            // Stopped to be handed over (its node drains or leaves): queued again for another
            // node in the same transaction, so that no one (`wait`, the API, an operator) sees it
            // STOPPED with nothing after it.
            ...(execution.status === 'STOPPED' && handle.handingOver ? requeueStatements(handle) : []),
          ],
        });
        return true;
      },
      async () => ((await explorer.getExecution(execution.id))?.status === execution.status ? true : undefined),
    );
  try {
    try {
      await recordEnd();
    } catch (error) {
      if (error instanceof FencedError) throw error;
      // The end could not be committed for another reason than a lost connection (a refused
      // COMMIT, a full disk): this process still owns the execution, so nothing else would ever
      // end it. Record it FAILED instead, naming why, after a pause for a passing cause.
      handle.log.error({ err: error }, `job ${def.name} execution ${execution.id}: recording its end (${execution.status}) failed: ${errorMessage(error)}`);
      execution.status = 'FAILED';
      execution.exitStatus = exitStatus('FAILED', `recording the end (${status}) failed: ${errorMessage(error)}`);
      await endAfterRefusal(handle, recordEnd);
    }
    handle.log.info({ status: execution.status, exitCode: execution.exitStatus.code }, `job ${def.name} execution ${execution.id} ${execution.status}`);
    return true;
  } catch (error) {
    if (!(error instanceof FencedError)) throw error;
    handle.log.warn(error.message);
    return false;
  }
}

/** A queued restart of the handle's execution (from its context as its end writes it), and on PostgreSQL the wake-up of the nodes. */
function requeueStatements(handle: ExecutionHandle): Statement[] {
  const requeue = { sql: SQL.requeue, params: [handle.execution.id] };
  return handle.db.dialect === 'postgres' ? [requeue, { sql: SQL.notifyLaunch, params: [handle.execution.jobName] }] : [requeue];
}

/** Tries `recordEnd` a few times, a little longer apart each time; rethrows the last failure. */
async function endAfterRefusal(handle: ExecutionHandle, recordEnd: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await sleep(250 * 2 ** attempt, handle.lost.signal);
    if (handle.lost.aborted) throw new FencedError(fencedMessage(handle));
    try {
      await recordEnd();
      return;
    } catch (error) {
      if (error instanceof FencedError || attempt >= END_ATTEMPTS) throw error;
    }
  }
}

const END_ATTEMPTS = 4;

function endUnrun(step: StepExecution, status: BatchStatus, exit: ExitStatus): StepEnd {
  return [step.id, ...counterParams(step), JSON.stringify(step.context), status, exit.code, `the job ended before this step ran: ${exit.description}`];
}

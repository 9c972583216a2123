import { runnableJob, type SomeJobStep, type StepContext } from '../core/job.ts';
import type { JobExecution, StepExecution } from '../core/model.ts';
import { IMPLICIT_PARAMS, type JsonParams, type ParamsSchema } from '../core/params.ts';
import { exitStatus, type BatchStatus } from '../core/status.ts';
import { counterParams } from '../repository/job-repository.ts';
import { SQL } from '../repository/sql.ts';
import { assertOwned, retryOnDisconnect, runFenced } from './checkpoint.ts';
import { createHandle, type ExecutionHandle } from './execution-handle.ts';
import { createExecution } from './launch.ts';
import type { ElementOutcome, JobRun } from './run-types.ts';

/** Step-context keys: the child's parameters as first launched, and its newest execution. */
const CHILD_PARAMS = 'ns.job.params';
const CHILD_EXECUTION = 'ns.job.execution';

/**
 * Runs a job step: launches its child job in this process, owned by this node, and ends with
 * the child's status and exit code. The child's parameters are computed once and saved in the
 * step's context before it runs, so a restart relaunches the same instance (restarting a failed
 * or stopped child) and finds a child that completed meanwhile without running it again. A stop
 * request or lost ownership of the parent reaches the child.
 */
export async function runJobStep<P>(
  def: SomeJobStep<P>,
  ctx: StepContext<P>,
  handle: ExecutionHandle,
  step: StepExecution,
  run: JobRun<P> | undefined,
): Promise<ElementOutcome> {
  if (!run) throw new Error(`job step ${def.name} can only run as an element of a job's flow`);
  const child = runnableJob(def.job);
  const context = ctx.stepContext;
  const saved = context[CHILD_PARAMS];
  if (isObject(saved)) {
    const completed = await completedChild(run, context[CHILD_EXECUTION]);
    if (completed) {
      ctx.log.info(`job ${child.name} already completed in execution ${completed.id}; not running it again`);
      return outcome(child.name, completed);
    }
  }
  const params = isObject(saved) ? saved : def.params ? def.params(ctx) : inherited(ctx.jobExecution.params, child.params);
  assertOwned(handle);
  const execution = await createExecution(handle.db, child, params, { kind: 'local', nodeId: handle.nodeId, nodeName: handle.nodeName }, handle.execution.id);
  context[CHILD_PARAMS] = execution.params;
  context[CHILD_EXECUTION] = execution.id;
  await retryOnDisconnect(handle, () =>
    runFenced(handle, (tx) => tx.execute(SQL.checkpoint, [...counterParams(step), JSON.stringify(context), step.id])),
  );
  ctx.log.info(`job step ${def.name} launched job ${child.name} as execution ${execution.id}`);
  const childHandle = createHandle(handle.db, execution, { id: handle.nodeId, name: handle.nodeName }, child, handle.log, handle.onProgress);
  const stop = () => (childHandle.stopRequested = true);
  const lose = () => childHandle.lost.abort();
  handle.stopSignal.addEventListener('abort', stop);
  handle.lost.signal.addEventListener('abort', lose);
  if (handle.stopRequested) stop();
  handle.children.add(childHandle);
  try {
    await run.runJob(child, childHandle, run.explorer);
  } finally {
    handle.children.delete(childHandle);
    handle.stopSignal.removeEventListener('abort', stop);
    handle.lost.signal.removeEventListener('abort', lose);
  }
  assertOwned(handle);
  if (childHandle.failure !== undefined) handle.failure ??= childHandle.failure;
  const ended = await run.explorer.getExecution(execution.id);
  if (!ended) throw new Error(`job ${child.name} execution ${execution.id} is gone`);
  return outcome(child.name, ended);
}

/** A completed execution of the child instance the step launched before, if any. */
async function completedChild(run: JobRun<unknown>, launched: unknown): Promise<JobExecution | undefined> {
  if (typeof launched !== 'number') return undefined;
  const execution = await run.explorer.getExecution(launched);
  if (!execution) return undefined;
  return (await run.explorer.executionsOfInstance(execution.instanceId)).find((e) => e.status === 'COMPLETED');
}

/** The parent's parameters the child declares, and the implicit ones (run.id, fireTime). */
function inherited(parent: JsonParams, schema: ParamsSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (Object.hasOwn(schema, name) || Object.hasOwn(IMPLICIT_PARAMS, name)) out[name] = value;
  }
  return out;
}

/** The step's outcome from the child's: its status (FAILED for anything but COMPLETED or STOPPED) and exit code. */
function outcome(job: string, child: JobExecution): ElementOutcome {
  const status: BatchStatus = child.status === 'COMPLETED' || child.status === 'STOPPED' ? child.status : 'FAILED';
  const why = child.exitStatus.description ? `: ${child.exitStatus.description}` : '';
  return { status, exitStatus: exitStatus(child.exitStatus.code, `job ${job} execution ${child.id} ${child.status}${why}`) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

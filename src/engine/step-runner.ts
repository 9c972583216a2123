import { lazyChild } from '../core/logger.ts';
import { FencedError, StartLimitExceededError, errorMessage } from '../core/errors.ts';
import { runnableChunkStep, type StepContext, type StepDefinition, type TaskletStepDefinition } from '../core/job.ts';
import type { ExecutionContext, StepExecution } from '../core/model.ts';
import { exitStatus, storedExitStatus, type BatchStatus, type ExitStatus } from '../core/status.ts';
import { counterParams, toStepExecution } from '../repository/job-repository.ts';
import { runGrouped } from '../repository/grouped-statement.ts';
import { SQL } from '../repository/sql.ts';
import type { Statement, Tx } from '../repository/tx.ts';
import { assertOwned, jobContextChanged, lostOwnership, retryOnDisconnect, runFenced } from './checkpoint.ts';
import { commitLazily } from './lazy-commit.ts';
import { runChunkStep } from './chunk-step.ts';
import { runJobStep } from './job-step.ts';
import { stepContext, taskletContext, type ExecutionHandle } from './execution-handle.ts';
import { runPartitionedStep } from './partitioned-step.ts';
import { requeuePartition } from './partition-worker.ts';
import type { ElementOutcome, JobRun, StepEnd } from './run-types.ts';

/**
 * A statement that is its own fence: it locks the job execution's row first and writes nothing
 * (returns no row) unless this node still owns the execution. Its row's `at` is the time it
 * wrote, which the pending step ends it carries take as their end. `endingStep`, on PostgreSQL,
 * is the same statement also ending one step, with finishStep's parameters after `params`.
 */
export interface FencedStatement extends Statement {
  endingStep?: string;
  /** `endingStep` over arrays, for many executions at once: such calls are grouped (see runGrouped). */
  endingSteps?: string;
  /** More statements for the same transaction, run once the fenced statement wrote its row. */
  also?: readonly Statement[];
}

type Row = Record<string, unknown>;

/**
 * Commits the run's pending step ends now, before something that may look at them (user code
 * other than the next step's own listeners, or steps running side by side).
 */
export async function commitPending(run: JobRun<unknown>): Promise<void> {
  if (!run.pending.length) return;
  await retryOnDisconnect(run.handle, () => runFenced(run.handle, (tx) => writePending(run, tx)));
  run.pending.length = 0;
}

/** Writes the run's pending step ends, each at `at` (the time of the write they go with) or now. */
async function writePending(run: JobRun<unknown>, tx: Tx, at: unknown = null): Promise<void> {
  for (const end of run.pending) await tx.execute(SQL.finishStep, [...end, at]);
}

/**
 * Commits `statement` with the run's pending step ends and its `also` statements, in as few round
 * trips as the dialect allows: one statement when nothing else is to be written (or, on
 * PostgreSQL, one step end), else one transaction. Returns the statement's first row; a lost
 * ownership writes nothing and throws FencedError.
 */
export async function commitWithPending(run: JobRun<unknown>, statement: FencedStatement): Promise<Row> {
  const { handle } = run;
  assertOwned(handle);
  const rows = await writeWithPending(run, statement);
  if (!rows.length) lostOwnership(handle);
  run.pending.length = 0;
  return rows[0];
}

async function writeWithPending(run: JobRun<unknown>, statement: FencedStatement): Promise<Row[]> {
  const db = run.handle.db;
  const [first, ...more] = run.pending;
  const also = statement.also ?? [];
  if (!also.length && !first) return db.query<Row>(statement.sql, statement.params);
  if (!also.length && !more.length && statement.endingStep && db.dialect === 'postgres') {
    const params = [...statement.params, ...first];
    return statement.endingSteps
      ? runGrouped(db, { sql: { one: statement.endingStep, many: statement.endingSteps } }, params)
      : db.query<Row>(statement.endingStep, params);
  }
  return db.transaction(async (tx) => {
    const done = await tx.query<Row>(statement.sql, statement.params);
    if (!done.length) return done;
    await writePending(run, tx, done[0].at ?? null);
    for (const s of also) await tx.execute(s.sql, s.params);
    return done;
  });
}

/**
 * Runs one step of a job execution, with Spring Batch's restart rules: a step that completed
 * in an earlier execution of the instance is not run again (its exit status is reused) unless
 * allowStartIfComplete; a step that did not complete resumes from its saved ExecutionContext;
 * startLimit caps how often it may start (StartLimitExceededError fails the job).
 */
export async function executeStep<P>(def: StepDefinition<P>, run: JobRun<P>): Promise<ElementOutcome> {
  const { handle, explorer } = run;
  // An instance's first execution has no earlier step executions, unless it loops back.
  const previous =
    run.executionNumber === 1 && !run.startedSteps.has(def.name)
      ? undefined
      : await explorer.lastStepOfInstance(handle.execution.instanceId, def.name);
  run.startedSteps.add(def.name);
  const earlier = previous && previous.step.jobExecutionId !== handle.execution.id ? previous.step : undefined;
  if (earlier?.status === 'COMPLETED' && !def.allowStartIfComplete) {
    handle.log.info({ step: def.name }, `step ${def.name} already completed; skipping it`);
    return { status: 'COMPLETED', exitStatus: earlier.exitStatus };
  }
  // As in Spring Batch, a step at its limit is not started and the job fails: transitions do
  // not route around it. A limit of 0 refuses even the first start.
  if (def.startLimit !== undefined && (previous?.startCount ?? 0) >= def.startLimit) {
    throw new StartLimitExceededError(`step ${def.name} has reached its start limit of ${def.startLimit}`);
  }
  const context: ExecutionContext = earlier && earlier.status !== 'COMPLETED' ? { ...earlier.context } : {};
  const step = takeFirstStep(run, def.name) ?? (await insertStep(run, def.name, context));
  // The live context, as a partition's is: what onProgress listeners see (e.g. ns.progress).
  step.context = context;
  const ctx = stepContext<P>({
    params: run.params,
    jobExecution: handle.execution,
    stepExecution: step,
    jobContext: run.jobContext,
    stepContext: context,
    executionNumber: run.executionNumber,
    db: handle.db,
    log: lazyChild(handle.log, { step: def.name }),
  }, handle);
  ctx.log.info(earlier ? `step ${def.name} restarting from its last checkpoint` : `step ${def.name} started`);
  return runStep(def, ctx, handle, step, run.deferEnds ? run.pending : undefined, run);
}

/**
 * Runs a started step execution: its listeners and body (tasklet, chunks or partitions), then
 * records how it ended, fenced like every commit: at once, or, given `pending`, with the job
 * run's next fenced write (the next step's start or the job's end), which saves a commit.
 * Also runs each partition of a partitioned step.
 */
export async function runStep<P>(
  def: StepDefinition<P>,
  ctx: StepContext<P>,
  handle: ExecutionHandle,
  step: StepExecution,
  pending?: StepEnd[],
  run?: JobRun<P>,
): Promise<ElementOutcome> {
  const context = ctx.stepContext;
  let status: BatchStatus;
  let exit: ExitStatus;
  try {
    for (const l of def.listeners ?? []) await l.beforeStep?.(ctx);
    const end =
      def.type === 'chunk'
        ? await runChunkStep(runnableChunkStep(def), ctx, handle, step)
        : def.type === 'tasklet'
          ? await runTasklet(def, ctx, handle, step, pending !== undefined)
          : def.type === 'job'
            ? await runJobStep(def, ctx, handle, step, run)
            : await runPartitionedStep(def, ctx, handle, step, runStep);
    ({ status, exitStatus: exit } = typeof end === 'string' ? { status: end, exitStatus: exitStatus(end) } : end);
  } catch (error) {
    if (error instanceof FencedError) throw error;
    status = 'FAILED';
    exit = exitStatus('FAILED', errorMessage(error));
    handle.failure ??= error;
    ctx.log.error({ err: error }, `step ${step.stepName} failed: ${errorMessage(error)}`);
  }
  step.status = status;
  step.exitStatus = exit;
  const ended = exit;
  try {
    for (const l of def.listeners ?? []) {
      const changed = await l.afterStep?.(ctx);
      // A new code without a description keeps the step's: a failure's reason is not lost.
      if (changed) step.exitStatus = exit = changed.description ? changed : { code: changed.code, description: exit.description };
    }
  } catch (error) {
    // As in Spring Batch: logged, and the step keeps its status and the exit status it had
    // before its afterStep listeners ran (the ones after the failing listener are not called).
    step.exitStatus = exit = ended;
    ctx.log.error({ err: error }, `an afterStep listener of step ${step.stepName} failed: ${errorMessage(error)}; the step stays ${status}`);
  }
  step.exitStatus = exit = storedExitStatus(exit);
  const end: StepEnd = [step.id, ...counterParams(step), JSON.stringify(context), status, exit.code, exit.description];
  if (pending) pending.push(end);
  else {
    // A partition stopped to be handed over is queued again in its end's own transaction (and
    // fence): no manager ever sees it STOPPED and not requeued, and takes that for a stop.
    const requeue = status === 'STOPPED' && handle.handingOver ? handle.partition?.id : undefined;
    await retryOnDisconnect(handle, () =>
      runFenced(handle, async (tx) => {
        await tx.execute(SQL.finishStep, [...end, null]);
        if (requeue !== undefined) await requeuePartition(tx, requeue);
      }),
    );
  }
  ctx.log.info({ status, exitCode: exit.code, read: step.readCount, write: step.writeCount }, `step ${step.stepName} ${status}`);
  return { status, exitStatus: exit };
}

const START_STEP = {
  sqlite: { sql: SQL.startStepFenced(SQL.fenceExecutionCheck) },
  postgres: { sql: SQL.startStepFenced(SQL.fenceExecution), endingStep: SQL.startStepEndingStep(SQL.fenceExecution) },
};

/** The step's execution if the claim started it already (the flow's first step, in a first execution). */
function takeFirstStep(run: JobRun<unknown>, name: string): StepExecution | undefined {
  const step = run.firstStep;
  if (step?.stepName !== name) return undefined;
  run.firstStep = undefined;
  return step;
}

/** Inserts the step's execution, committing the run's pending step ends with it. */
async function insertStep(run: JobRun<unknown>, name: string, context: ExecutionContext): Promise<StepExecution> {
  const { handle } = run;
  const start: FencedStatement = {
    ...START_STEP[handle.db.dialect],
    params: [handle.execution.id, handle.nodeId, handle.epoch, name, JSON.stringify(context), handle.nodeName],
  };
  return retryOnDisconnect(
    handle,
    async () => toStepExecution(await commitWithPending(run, start)),
    // The insert may have committed before the connection broke: then use the step it made.
    async () => {
      const rows = await handle.db.query<{ id: number }>(SQL.startedStepOfExecution, [handle.execution.id, name]);
      // A step looping back to itself: its previous execution, whose end is still pending, is not the new one.
      if (!rows.length || run.pending.some((end) => end[0] === Number(rows[0].id))) return undefined;
      run.pending.length = 0;
      return toStepExecution((await handle.db.query<Record<string, unknown>>(SQL.getStep, [rows[0].id]))[0]);
    },
  );
}

/**
 * Calls the tasklet until it is done; each call commits with the step's checkpoint. A call that
 * throws because of a stop request (the stop signal's AbortError) ends the step STOPPED: its
 * transaction rolls back and a restart calls the tasklet again.
 */
async function runTasklet<P>(
  def: TaskletStepDefinition<P>,
  ctx: StepContext<P>,
  handle: ExecutionHandle,
  step: StepExecution,
  deferLast: boolean,
): Promise<'COMPLETED' | 'STOPPED' | ElementOutcome> {
  for (;;) {
    if (handle.stopRequested) return 'STOPPED';
    const next = { ...step, commitCount: step.commitCount + 1 };
    const checkpoint = () => ({ stepExecutionId: step.id, counters: next, stepContext: ctx.stepContext, jobContext: ctx.jobContext });
    // The last call's checkpoint may wait for the step's end (written with the next fenced write),
    // unless the call committed work of its own or changed the job's context.
    const mayDefer = (value: unknown) => deferLast && value !== 'CONTINUABLE' && !jobContextChanged(handle, ctx.jobContext);
    let result;
    try {
      result = await commitLazily(
        handle,
        async (tx) => def.tasklet(taskletContext(ctx, def.transactional === false ? handle.db : tx)),
        checkpoint,
        ctx.stepContext,
        mayDefer,
      );
    } catch (error) {
      if (!(error instanceof FencedError)) step.rollbackCount++;
      if (stoppedBy(handle, error)) {
        ctx.log.info(`step ${step.stepName} ended early on a stop request`);
        const why = error === handle.stopSignal.reason ? '' : `: ${errorMessage(error)}`;
        return { status: 'STOPPED', exitStatus: exitStatus('STOPPED', `stopped on request while the tasklet ran${why}`) };
      }
      throw error;
    }
    step.commitCount++;
    if (result.stopping) handle.stopRequested = true;
    const value = result.value;
    if (value === 'CONTINUABLE') continue;
    return isExitStatus(value) ? { status: 'COMPLETED', exitStatus: value } : 'COMPLETED';
  }
}

/** Whether a tasklet's error is its way of ending early on a stop request (not a lost execution). */
function stoppedBy(handle: ExecutionHandle, error: unknown): boolean {
  if (!handle.stopRequested || handle.lost.aborted) return false;
  return error === handle.stopSignal.reason || (error as { name?: unknown } | null)?.name === 'AbortError';
}

function isExitStatus(value: unknown): value is ExitStatus {
  return typeof value === 'object' && value !== null && typeof (value as ExitStatus).code === 'string';
}

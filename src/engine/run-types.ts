// Types shared by the modules that run a job execution (job-run, flow, step-runner, and the
// partition modules), kept apart so that none of those modules imports another just for a type.
import type { JobDefinition, StepContext, StepDefinition } from '../core/job.ts';
import type { ExecutionContext, StepExecution } from '../core/model.ts';
import type { ParamsSchema } from '../core/params.ts';
import type { BatchStatus, ExitStatus } from '../core/status.ts';
import type { JobExplorer } from '../repository/job-repository.ts';
import type { ExecutionHandle } from './execution-handle.ts';

/** Everything the steps of one running job execution share. */
export interface JobRun<P> {
  readonly def: JobDefinition<ParamsSchema>;
  readonly handle: ExecutionHandle;
  readonly explorer: JobExplorer;
  readonly params: P;
  readonly jobContext: ExecutionContext;
  readonly executionNumber: number;
  /** Steps started in this execution (a first execution has no earlier ones to look up). */
  readonly startedSteps: Set<string>;
  /** Step ends not committed yet: they commit with the run's next fenced write. */
  readonly pending: StepEnd[];
  /** Whether a step's end may wait for the next write (not in a split, whose flows run side by side). */
  readonly deferEnds: boolean;
  /** The first step's execution when the claim already started it, until the flow takes it. */
  firstStep: StepExecution | undefined;
  /** Runs a child job's execution to its end (job-run's runJobExecution), for job steps. */
  readonly runJob: RunJob;
}

/**
 * Runs a job execution this process owns to its end and records how it ended (job-run's
 * runJobExecution); resolves with whether it recorded the end (false: fenced).
 */
export type RunJob = (def: JobDefinition<ParamsSchema>, handle: ExecutionHandle, explorer: JobExplorer) => Promise<boolean>;

export interface ElementOutcome {
  status: BatchStatus;
  exitStatus: ExitStatus;
}

/** A step's end not committed yet (finishStep's parameters): it commits with the job run's next fenced write. */
export type StepEnd = readonly unknown[];

/**
 * Runs a started step execution to its end (step-runner's runStep). The partition modules get it
 * as a parameter: a partition runs a step, and a step may be partitioned.
 */
export type RunStep = <P>(def: StepDefinition<P>, ctx: StepContext<P>, handle: ExecutionHandle, step: StepExecution) => Promise<ElementOutcome>;

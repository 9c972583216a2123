import type { JsonParams } from './params.ts';
import type { BatchStatus, ExitStatus } from './status.ts';

/** JSON state saved with every commit, at job and at step level, and used to restart. */
export type ExecutionContext = Record<string, unknown>;

/** A job name plus its identifying parameters. */
export interface JobInstance {
  readonly id: number;
  readonly jobName: string;
  readonly key: string;
  readonly identifyingParams: JsonParams;
  readonly createTime: Date;
}

/** One attempt to run a job instance. */
export interface JobExecution {
  readonly id: number;
  readonly instanceId: number;
  readonly jobName: string;
  status: BatchStatus;
  exitStatus: ExitStatus;
  /** All parameters of this attempt (identifying and not), in JSON form. */
  readonly params: JsonParams;
  readonly createTime: Date;
  startTime: Date | null;
  endTime: Date | null;
  lastUpdated: Date | null;
  version: number;
  /** The node (process) that owns the execution while it runs, and the ownership epoch that fences it. */
  ownerNodeId: number | null;
  ownerEpoch: number;
  /** Name of the owning node, when known. */
  node: string | null;
  context: ExecutionContext;
  /** Routing of a submitted (clustered) launch. */
  targetNode: string | null;
  affinityKey: string | null;
  /** 1 for the instance's first execution, 2 for its first restart...; known when just created or claimed. */
  executionNumber?: number;
}

/** The counters of a step execution. */
export interface StepCounters {
  readCount: number;
  writeCount: number;
  filterCount: number;
  readSkipCount: number;
  processSkipCount: number;
  writeSkipCount: number;
  commitCount: number;
  rollbackCount: number;
}

export const ZERO_COUNTERS: Readonly<StepCounters> = Object.freeze({
  readCount: 0, writeCount: 0, filterCount: 0, readSkipCount: 0,
  processSkipCount: 0, writeSkipCount: 0, commitCount: 0, rollbackCount: 0,
});

/** One attempt to run a step. */
export interface StepExecution extends StepCounters {
  readonly id: number;
  readonly jobExecutionId: number;
  readonly stepName: string;
  status: BatchStatus;
  exitStatus: ExitStatus;
  startTime: Date | null;
  endTime: Date | null;
  lastUpdated: Date | null;
  version: number;
  context: ExecutionContext;
  node: string | null;
}

export function skipCount(s: StepCounters): number {
  return s.readSkipCount + s.processSkipCount + s.writeSkipCount;
}

import type { JsonParams } from './params.ts';
import type { BatchStatus, ExitStatus } from './status.ts';

/** JSON state saved with every commit, at job and at step level, and used to restart. */
export type ExecutionContext = Record<string, unknown>;

/** A job name plus its identifying parameters. */
export interface JobInstance {
  /** The instance's id in the repository. */
  readonly id: number;
  /** The job's name. */
  readonly jobName: string;
  /** A hash of the identifying parameters: one instance per job name and key. */
  readonly key: string;
  /** The parameters that identify the instance, in JSON form. */
  readonly identifyingParams: JsonParams;
  /** When its first execution was created. */
  readonly createTime: Date;
}

/** One attempt to run a job instance. */
export interface JobExecution {
  /** The execution's id (what the CLI and the API take). */
  readonly id: number;
  /** The job instance it is an attempt at. */
  readonly instanceId: number;
  /** The job's name. */
  readonly jobName: string;
  /** Where the execution is in its life: STARTING (queued), STARTED, ..., COMPLETED. */
  status: BatchStatus;
  /** How it ended (or is ending): an exit code the flow routed on, and a description. */
  exitStatus: ExitStatus;
  /** All parameters of this attempt (identifying and not), in JSON form. */
  readonly params: JsonParams;
  /** When it was created (launched or submitted). */
  readonly createTime: Date;
  /** When a process began running it, or null while queued. */
  startTime: Date | null;
  /** When it ended, or null while it runs. */
  endTime: Date | null;
  /** When its row last changed. */
  lastUpdated: Date | null;
  /** Incremented by each change of its row (optimistic locking). */
  version: number;
  /** The node (process) that owns the execution while it runs, and the ownership epoch that fences it. */
  ownerNodeId: number | null;
  /** The ownership epoch: incremented each time the execution changes owner; every commit checks it. */
  ownerEpoch: number;
  /** Name of the owning node, when known. */
  node: string | null;
  /** The job-level ExecutionContext as last committed. */
  context: ExecutionContext;
  /** Routing of a submitted (clustered) launch. */
  targetNode: string | null;
  /** The affinity key of a submitted launch (`--key`): the same key goes to the same live node. */
  affinityKey: string | null;
  /** 1 for the instance's first execution, 2 for its first restart...; known when just created or claimed. */
  executionNumber?: number;
}

/**
 * A later execution of the same job instance, as an execution's `restartedAs` names it (see
 * ExecutionSummary): its id and its status when read.
 */
export interface LaterExecution {
  /** The later execution's id. */
  readonly id: number;
  /** Its status when read: COMPLETED means the instance's work is done. */
  readonly status: BatchStatus;
}

/**
 * A job execution as the operator lists and shows it (`listExecutions`, `getExecution`, the API's
 * `GET /api/executions` and the CLI's `executions`): the execution, and whether its instance has
 * run again since.
 */
export interface ExecutionSummary extends JobExecution {
  /**
   * The newest later execution of the same job instance, with its status when read, or null when
   * this execution is its instance's newest. A later execution is a restart (`restart`, the API's
   * restart, the console's Restart button) or the execution a failover handed the instance to.
   * So a FAILED execution whose `restartedAs.status` is COMPLETED needs nothing more: a restart
   * has done its work. It names the newest, not the next: after #10 FAILED, #11 FAILED and
   * #12 COMPLETED, both #10 and #11 name #12.
   */
  restartedAs: LaterExecution | null;
}

/** The counters of a step execution. */
export interface StepCounters {
  /** Items read (read errors skipped not included). */
  readCount: number;
  /** Items written in committed chunks. */
  writeCount: number;
  /** Items the processor filtered out (returned `undefined` for). */
  filterCount: number;
  /** Read errors skipped. */
  readSkipCount: number;
  /** Items skipped because processing them failed. */
  processSkipCount: number;
  /** Items skipped because writing them failed (found when the chunk was written item by item). */
  writeSkipCount: number;
  /** Transactions committed: one per chunk (the one finding the end of input included), one per item written item by item, one per tasklet call. */
  commitCount: number;
  /** Transactions rolled back: failed chunks, failed write attempts, items whose own write failed. */
  rollbackCount: number;
}

export const ZERO_COUNTERS: Readonly<StepCounters> = Object.freeze({
  readCount: 0, writeCount: 0, filterCount: 0, readSkipCount: 0,
  processSkipCount: 0, writeSkipCount: 0, commitCount: 0, rollbackCount: 0,
});

/** One attempt to run a step. */
export interface StepExecution extends StepCounters {
  /** The step execution's id. */
  readonly id: number;
  /** The job execution it belongs to. */
  readonly jobExecutionId: number;
  /** The step's name (a partition's is `step:partitionN`). */
  readonly stepName: string;
  /** Where the step is in its life: STARTED, then COMPLETED, FAILED, STOPPED, ... */
  status: BatchStatus;
  /** How it ended: the exit code transitions route on, and a description. */
  exitStatus: ExitStatus;
  /** When it began. */
  startTime: Date | null;
  /** When it ended, or null while it runs. */
  endTime: Date | null;
  /** When its row last changed (each commit). */
  lastUpdated: Date | null;
  /** Incremented by each commit of the step. */
  version: number;
  /** The step-level ExecutionContext as last committed (the reader's position, ...). */
  context: ExecutionContext;
  /** The node that ran it, when known. */
  node: string | null;
}

export function skipCount(s: StepCounters): number {
  return s.readSkipCount + s.processSkipCount + s.writeSkipCount;
}

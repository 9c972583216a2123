/**
 * The JSON shapes of executions, steps, nodes and jobs: what the CLI prints with
 * --json and what the HTTP API answers.
 */
import type { JobDefinition } from './core/job.ts';
import type { JobExecution, StepExecution } from './core/model.ts';
import { progressOf, progressOfSteps, type StepProgress } from './core/progress.ts';
import type { ExecutionDetails, ExecutionSummary, NodeInfo } from './operator.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * A step execution in the CLI's JSON shape, plus its progress: its own, or the
 * one given (a partitioned step's, summed from its partitions).
 */
export function stepJson(s: StepExecution, progress: StepProgress | null = progressOf(s.context)) {
  return {
    name: s.stepName,
    status: s.status,
    exitStatus: { code: s.exitStatus.code, description: s.exitStatus.description },
    readCount: s.readCount,
    writeCount: s.writeCount,
    filterCount: s.filterCount,
    readSkipCount: s.readSkipCount,
    processSkipCount: s.processSkipCount,
    writeSkipCount: s.writeSkipCount,
    commitCount: s.commitCount,
    rollbackCount: s.rollbackCount,
    startTime: iso(s.startTime),
    endTime: iso(s.endTime),
    node: s.node,
    progress,
  };
}

/**
 * An execution in the CLI's JSON shape; steps when known, and `restartedAs` (the newest later
 * execution of its instance, or null) where the execution was read with it: lists and single
 * executions, not what a launch returns as it creates it.
 */
export function executionJson(e: JobExecution | ExecutionSummary | ExecutionDetails) {
  return {
    id: e.id,
    jobName: e.jobName,
    instanceId: e.instanceId,
    status: e.status,
    exitStatus: { code: e.exitStatus.code, description: e.exitStatus.description },
    parameters: e.params,
    createTime: iso(e.createTime),
    startTime: iso(e.startTime),
    endTime: iso(e.endTime),
    node: e.node,
    ...('restartedAs' in e ? { restartedAs: e.restartedAs } : {}),
    ...('steps' in e ? { steps: stepsJson(e.steps) } : {}),
  };
}

/** An execution's steps, flat (partitions among them): a partitioned step's progress sums its partitions'. */
function stepsJson(steps: StepExecution[]) {
  const progress = progressOfSteps(steps);
  return steps.map((s, i) => stepJson(s, progress[i]));
}

/** A cluster node in the CLI's JSON shape. */
export function nodeJson(n: NodeInfo) {
  return {
    name: n.name, status: n.status, draining: n.draining, lastHeartbeat: n.lastHeartbeat.toISOString(), jobs: n.jobs, running: n.running,
    runningPartitions: n.runningPartitions, host: n.host, pid: n.pid, concurrency: n.concurrency,
  };
}

export function jobJson(j: JobDefinition) {
  return {
    name: j.name,
    description: j.description ?? null,
    restartable: j.restartable,
    // Only for a job that has one: a job without a limit lists as it always did.
    ...(j.maxRunning === undefined ? {} : { maxRunning: j.maxRunning }),
    // Only for a job whose firings are instances of its own parameters (a business date).
    ...(j.fireTimeIdentifying ? {} : { fireTimeIdentifying: false }),
    parameters: Object.fromEntries(
      Object.entries(j.params).map(([name, spec]) => [
        name,
        {
          type: spec.kind,
          default: spec.default instanceof Date ? spec.default.toISOString() : (spec.default ?? null),
          required: spec.required,
          identifying: spec.identifying,
        },
      ]),
    ),
  };
}

/**
 * A chunk step's progress as the engine saves it with each commit, in the step's
 * ExecutionContext under a reserved key, and the reading and summing of it for displays.
 */
import type { ExecutionContext, StepExecution } from './model.ts';
import { PARTITION_SUFFIX, latestPartitions } from './partitions.ts';

/** The step-context key of a chunk step's progress. */
export const PROGRESS_KEY = 'ns.progress';

/** How far a step is: `done` of `total` (null when unknown) items or bytes of its input. */
export interface StepProgress {
  unit: 'items' | 'bytes';
  done: number;
  total: number | null;
}

const amount = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/** The progress saved in a step's context, or null when it has none (or not in this shape). */
export function progressOf(context: ExecutionContext | undefined): StepProgress | null {
  const p = context?.[PROGRESS_KEY] as Partial<StepProgress> | undefined;
  if (!p || typeof p !== 'object' || (p.unit !== 'items' && p.unit !== 'bytes') || !amount(p.done)) return null;
  return { unit: p.unit, done: p.done, total: amount(p.total) ? p.total : null };
}

/**
 * The progress of a partitioned step from its partitions': the sums of `done` and `total`. The
 * total is unknown (null) while any partition's is (one not started yet has none); null when
 * no partition has progress, or when they count in different units.
 */
export function sumProgress(parts: readonly (StepProgress | null)[]): StepProgress | null {
  let sum: StepProgress | null = null;
  let unknown = false;
  for (const p of parts) {
    if (p === null) {
      unknown = true;
      continue;
    }
    if (sum === null) sum = { ...p };
    else if (sum.unit !== p.unit) return null;
    else {
      sum.done += p.done;
      sum.total = sum.total === null || p.total === null ? null : sum.total + p.total;
    }
  }
  if (sum && unknown) sum.total = null;
  return sum;
}

/** A partitioned step's progress: the sum of its partitions' newest executions'. */
export function partitionedProgress(partitions: readonly Pick<StepExecution, 'id' | 'stepName' | 'context'>[]): StepProgress | null {
  return sumProgress(latestPartitions(partitions).map((p) => progressOf(p.context)));
}

/**
 * The progress of each of an execution's steps, given flat (partitions among them, as the CLI
 * lists them): a step's own, or for a partitioned step's manager its partitions' sum.
 */
export function progressOfSteps(steps: readonly StepExecution[]): (StepProgress | null)[] {
  const partitions = new Map<string, StepExecution[]>();
  for (const s of steps) {
    if (!PARTITION_SUFFIX.test(s.stepName)) continue;
    const manager = s.stepName.replace(PARTITION_SUFFIX, '');
    const list = partitions.get(manager);
    if (list) list.push(s);
    else partitions.set(manager, [s]);
  }
  return steps.map((s) => {
    const parts = partitions.get(s.stepName);
    return parts ? partitionedProgress(parts) : progressOf(s.context);
  });
}

/** How a partitioned step's partitions are named, and which of their executions count. */
import type { StepExecution } from './model.ts';

/** A partition's step name is its manager's plus this suffix (`load:partition3`). */
export const PARTITION_SUFFIX = /:partition\d+$/;

/** The newest execution of each partition (a failed-over partition is replaced by a new one). */
export function latestPartitions<S extends Pick<StepExecution, 'id' | 'stepName'>>(partitions: readonly S[]): S[] {
  const latest = new Map<string, S>();
  for (const p of partitions) if ((latest.get(p.stepName)?.id ?? -1) < p.id) latest.set(p.stepName, p);
  return [...latest.values()];
}

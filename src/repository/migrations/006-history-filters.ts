import type { Dialect } from '../tx.ts';

/**
 * Version 6: an index for listing a node's executions in a status, chosen for what it costs each
 * insert as much as for the read.
 *
 * `ns_job_execution_node_ended (node_name, status, id)` is partial: it holds only executions that
 * ended FAILED, STOPPED, ABANDONED or UNKNOWN. Listing a node's executions in one of these
 * statuses reads one range of it, however rare the pair (a node that ran none would otherwise
 * walk every FAILED execution in `(status, id)`). An insert (status STARTING) adds no entry to
 * it; an execution adds one when it ends in one of these statuses. The other statuses are served
 * by the indexes of migration 4: COMPLETED, the bulk of history, is dense in `(node_name, id)`,
 * and the running statuses hold only running work in `(status, id)`. The list query repeats the
 * predicate as a condition of its own (see SQL.listExecutions), so that both planners can prove
 * the partial index applies while the status is a parameter.
 *
 * The parameter-text search keeps reading a bounded window of history per page: a pg_trgm GIN
 * index was measured and does not meet the history goal (see README, History and retention).
 */
export function historyFiltersSchema(_d: Dialect): string[] {
  return [
    `CREATE INDEX ns_job_execution_node_ended ON ns_job_execution (node_name, status, id)
      WHERE status IN ('FAILED', 'STOPPED', 'ABANDONED', 'UNKNOWN')`,
  ];
}

import type { Dialect } from '../tx.ts';

/**
 * Version 16: an instance's executions are indexed in id order, `(instance_id, id)`, in place of
 * version 1's `(instance_id)`. The newest later execution of an instance (what a listed or shown
 * execution's `restartedAs` names, see SQL.listExecutions) is then one index entry, however many
 * times the instance ran (restarts, failovers); on PostgreSQL the old index reached an id only
 * through the table, each of the instance's rows in turn. The instance's executions newest first
 * and an execution's number in its instance read the same range. Foreign-key checks on the
 * instance use its first column.
 */
export function executionsByInstanceSchema(_d: Dialect): string[] {
  return [
    `CREATE INDEX ns_job_execution_by_instance ON ns_job_execution (instance_id, id)`,
    `DROP INDEX ns_job_execution_instance`,
  ];
}

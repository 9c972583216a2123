/**
 * Version 7: fewer index entries per queued launch (bulk submit).
 *
 * A queued execution has no owner and no node name yet. Two indexes of ns_job_execution held an
 * entry for it all the same, which every launch paid for and no query read:
 * - `ns_job_execution_node (node_name, id)` serves the execution list filtered by node, which
 *   asks for `node_name = $n` (never a null name): it now holds only executions that a node took.
 * - `ns_job_execution_running (owner_node_id)` serves the lookups of what a node runs, which all
 *   ask for an owner (`owner_node_id = $n` or `IS NOT NULL`): it now holds only owned executions
 *   that are still running.
 * Both keep their names (the live-index list of the query-plan test, SQLite's planner). The claim
 * writes the same entries as before: it sets the owner and node name and changes the status, so
 * it already wrote a new version of every index entry of the row.
 */
export function bulkSubmitSchema(): string[] {
  return [
    `DROP INDEX ns_job_execution_node`,
    `CREATE INDEX ns_job_execution_node ON ns_job_execution (node_name, id) WHERE node_name IS NOT NULL`,
    `DROP INDEX ns_job_execution_running`,
    `CREATE INDEX ns_job_execution_running ON ns_job_execution (owner_node_id)
      WHERE status IN ('STARTING', 'STARTED', 'STOPPING') AND owner_node_id IS NOT NULL`,
  ];
}

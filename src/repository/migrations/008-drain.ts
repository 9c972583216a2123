import type { Dialect } from '../tx.ts';

/**
 * Version 8: a cheaper status-change counter on PostgreSQL, for claims and ends of many
 * executions per statement. Each updated row counts -1 for its old (job, status) and +1 for its
 * new one; rows whose status did not change cancel out. No join of the transition tables, which
 * version 5 needed for the same sum. SQLite's row triggers are unchanged.
 */
export function drainSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  return [
    `CREATE OR REPLACE FUNCTION ns_count_update() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      INSERT INTO ns_execution_count_delta (job_name, status, n)
        SELECT job_name, status, sum(d) FROM (
          SELECT job_name, status, -1 AS d FROM ns_old
          UNION ALL
          SELECT job_name, status, 1 AS d FROM ns_new
        ) x GROUP BY job_name, status HAVING sum(d) <> 0;
      RETURN NULL;
    END $body$`,
  ];
}

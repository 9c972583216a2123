import type { Dialect } from '../tx.ts';
import { ENDED_STATUSES } from './012-ended-counters.ts';

/**
 * Version 13 (PostgreSQL): the counters of ends are kept by the statement trigger on update,
 * which already writes the counts' deltas, instead of a row trigger per end. The row trigger ran
 * a PL/pgSQL call and inserted a delta row for every execution that ended: a grouped end of 64
 * executions inserted 64 delta rows, which folding then read and deleted. Now a statement inserts
 * one delta row per job and status, as for the counts (about 8 % of PostgreSQL's CPU per job in a
 * drain of no-op jobs).
 *
 * An execution enters an ended status when its new row has it and its old row did not: the new
 * rows in an ended status, less the rows that were in that same status before (an update that
 * leaves an ended status as it was, found by joining the transition tables on id, only for the
 * old rows already ended, so that a claim or an end joins nothing).
 */
export function endedInStatementSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  const ended = ENDED_STATUSES.map((s) => `'${s}'`).join(', ');
  return [
    `CREATE OR REPLACE FUNCTION ns_count_update() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      INSERT INTO ns_execution_count_delta (job_name, status, n, ended)
        SELECT job_name, status, sum(d), sum(e) FROM (
          SELECT job_name, status, -1 AS d, 0 AS e FROM ns_old
          UNION ALL
          SELECT job_name, status, 1, CASE WHEN status IN (${ended}) THEN 1 ELSE 0 END FROM ns_new
          UNION ALL
          SELECT n.job_name, n.status, 0, -1 FROM ns_old o JOIN ns_new n ON n.id = o.id AND n.status = o.status
            WHERE o.status IN (${ended})
        ) x GROUP BY job_name, status HAVING sum(d) <> 0 OR sum(e) <> 0;
      RETURN NULL;
    END $body$`,
    `DROP TRIGGER IF EXISTS ns_count_ended ON ns_job_execution`,
    `DROP FUNCTION IF EXISTS ns_count_ended()`,
  ];
}

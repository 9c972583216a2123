import type { Dialect } from '../tx.ts';

/** The statuses an execution ends in: what `ns_execution_count.ended` counts entries into. */
export const ENDED_STATUSES = ['COMPLETED', 'FAILED', 'STOPPED', 'ABANDONED', 'UNKNOWN'] as const;

/**
 * Version 12: counters of ends that only go up, for Prometheus counters (`rate()` alerts on
 * failures), kept by the same triggers as the counts of version 5.
 *
 * `ns_execution_count.ended` (and its delta) counts the executions of a job that entered an ended
 * status (an insert in one, or a status change into one), and a delete does not lower it: `prune`
 * and retention leave it as it was, unlike `n`. An execution that failed and was abandoned later
 * counts once as FAILED and once as ABANDONED. It starts at the ended executions the repository
 * holds when it is upgraded (on PostgreSQL as one more delta row, since the counts are the
 * counter rows plus their unfolded deltas).
 *
 * - SQLite: one more row trigger, on a status change into an ended status, and the insert trigger
 *   counts an execution inserted ended.
 * - PostgreSQL: the statement trigger on insert counts the inserted ended rows in its delta rows;
 *   a row trigger on update, whose WHEN only an end passes (never a claim), appends a delta row
 *   per end, so that the statement trigger of version 8 still needs no join of the transition
 *   tables. Folding sums `ended` with `n`.
 */
export function endedCountersSchema(d: Dialect): string[] {
  const ended = ENDED_STATUSES.map((s) => `'${s}'`).join(', ');
  const common = [
    `ALTER TABLE ns_execution_count ADD COLUMN ended ${d === 'postgres' ? 'BIGINT' : 'INTEGER'} NOT NULL DEFAULT 0`,
    `ALTER TABLE ns_execution_count_delta ADD COLUMN ended ${d === 'postgres' ? 'BIGINT' : 'INTEGER'} NOT NULL DEFAULT 0`,
  ];
  // The ended executions held now, counters and (PostgreSQL) deltas not folded yet: one delta row.
  const start = d === 'sqlite'
    ? `UPDATE ns_execution_count SET ended = n WHERE status IN (${ended}) AND n > 0`
    : `INSERT INTO ns_execution_count_delta (job_name, status, n, ended)
      SELECT job_name, status, 0, sum(n) FROM (
        SELECT job_name, status, n FROM ns_execution_count UNION ALL SELECT job_name, status, n FROM ns_execution_count_delta) c
      WHERE status IN (${ended}) GROUP BY job_name, status HAVING sum(n) > 0`;
  common.push(start);
  if (d === 'sqlite') {
    return [
      ...common,
      `DROP TRIGGER IF EXISTS ns_count_insert`,
      `CREATE TRIGGER ns_count_insert AFTER INSERT ON ns_job_execution BEGIN
        INSERT INTO ns_execution_count (job_name, status, n, ended)
          VALUES (NEW.job_name, NEW.status, 1, CASE WHEN NEW.status IN (${ended}) THEN 1 ELSE 0 END)
          ON CONFLICT (job_name, status) DO UPDATE SET n = n + 1, ended = ended + excluded.ended;
      END`,
      // An upsert: SQLite does not promise that ns_count_update, which adds the row, fires first.
      `CREATE TRIGGER ns_count_ended AFTER UPDATE OF status ON ns_job_execution
        WHEN OLD.status <> NEW.status AND NEW.status IN (${ended}) BEGIN
        INSERT INTO ns_execution_count (job_name, status, n, ended) VALUES (NEW.job_name, NEW.status, 0, 1)
          ON CONFLICT (job_name, status) DO UPDATE SET ended = ended + 1;
      END`,
    ];
  }
  return [
    ...common,
    `CREATE OR REPLACE FUNCTION ns_count_insert() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      INSERT INTO ns_execution_count_delta (job_name, status, n, ended)
        SELECT job_name, status, count(*), CASE WHEN status IN (${ended}) THEN count(*) ELSE 0 END
        FROM ns_new GROUP BY job_name, status;
      RETURN NULL;
    END $body$`,
    `CREATE OR REPLACE FUNCTION ns_count_ended() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      INSERT INTO ns_execution_count_delta (job_name, status, n, ended) VALUES (NEW.job_name, NEW.status, 0, 1);
      RETURN NULL;
    END $body$`,
    `CREATE TRIGGER ns_count_ended AFTER UPDATE OF status ON ns_job_execution FOR EACH ROW
      WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN (${ended}))
      EXECUTE FUNCTION ns_count_ended()`,
  ];
}

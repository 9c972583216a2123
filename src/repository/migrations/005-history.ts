import type { Dialect } from '../tx.ts';
import { types } from './types.ts';

/**
 * Version 5: history that stays cheap to read however long it grows.
 *
 * - `ns_execution_count`: how many executions each job has in each status, kept by triggers as
 *   executions are inserted, change status or are deleted, in the same transaction. Metrics and
 *   the console read it instead of grouping the whole history.
 *   - SQLite has one writer at a time, so its triggers update the counter rows directly.
 *   - On PostgreSQL a counter row that every transaction updated would serialise the cluster's
 *     claims and ends on its row lock. Statement triggers append one delta row per (job, status)
 *     that a statement changed to `ns_execution_count_delta` instead (no lock shared with other
 *     writers), and whoever reads or maintains the counts folds the deltas into the counter rows
 *     (one folder at a time, under an advisory lock). A read sums both in one snapshot.
 * - `ns_job_execution (job_name, status, id)`: the execution list filtered by job and status at
 *   once, newest first, one index range.
 */
export function historySchema(d: Dialect): string[] {
  const { id, big } = types(d);
  const common = [
    `CREATE TABLE ns_execution_count (
      job_name TEXT NOT NULL,
      status TEXT NOT NULL,
      n ${big} NOT NULL,
      PRIMARY KEY (job_name, status)
    )`,
    `CREATE TABLE ns_execution_count_delta (
      id ${id},
      job_name TEXT NOT NULL,
      status TEXT NOT NULL,
      n ${big} NOT NULL
    )`,
    `INSERT INTO ns_execution_count (job_name, status, n)
      SELECT job_name, status, count(*) FROM ns_job_execution GROUP BY job_name, status`,
    `CREATE INDEX ns_job_execution_job_status ON ns_job_execution (job_name, status, id)`,
  ];
  if (d === 'sqlite') {
    return [
      ...common,
      `CREATE TRIGGER ns_count_insert AFTER INSERT ON ns_job_execution BEGIN
        INSERT INTO ns_execution_count (job_name, status, n) VALUES (NEW.job_name, NEW.status, 1)
          ON CONFLICT (job_name, status) DO UPDATE SET n = n + 1;
      END`,
      `CREATE TRIGGER ns_count_update AFTER UPDATE OF status ON ns_job_execution WHEN OLD.status <> NEW.status BEGIN
        UPDATE ns_execution_count SET n = n - 1 WHERE job_name = OLD.job_name AND status = OLD.status;
        INSERT INTO ns_execution_count (job_name, status, n) VALUES (NEW.job_name, NEW.status, 1)
          ON CONFLICT (job_name, status) DO UPDATE SET n = n + 1;
      END`,
      `CREATE TRIGGER ns_count_delete AFTER DELETE ON ns_job_execution BEGIN
        UPDATE ns_execution_count SET n = n - 1 WHERE job_name = OLD.job_name AND status = OLD.status;
      END`,
    ];
  }
  const fn = (name: string, body: string) => `CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      ${body};
      RETURN NULL;
    END $body$`;
  return [
    ...common,
    fn('ns_count_insert', `INSERT INTO ns_execution_count_delta (job_name, status, n)
      SELECT job_name, status, count(*) FROM ns_new GROUP BY job_name, status`),
    fn('ns_count_update', `INSERT INTO ns_execution_count_delta (job_name, status, n)
      SELECT job_name, status, sum(d) FROM (
        SELECT o.job_name, o.status, -1 AS d FROM ns_old o JOIN ns_new n ON n.id = o.id WHERE n.status <> o.status
        UNION ALL
        SELECT n.job_name, n.status, 1 AS d FROM ns_old o JOIN ns_new n ON n.id = o.id WHERE n.status <> o.status
      ) x GROUP BY job_name, status HAVING sum(d) <> 0`),
    fn('ns_count_delete', `INSERT INTO ns_execution_count_delta (job_name, status, n)
      SELECT job_name, status, -count(*) FROM ns_old GROUP BY job_name, status`),
    `CREATE TRIGGER ns_count_insert AFTER INSERT ON ns_job_execution REFERENCING NEW TABLE AS ns_new
      FOR EACH STATEMENT EXECUTE FUNCTION ns_count_insert()`,
    `CREATE TRIGGER ns_count_update AFTER UPDATE ON ns_job_execution REFERENCING OLD TABLE AS ns_old NEW TABLE AS ns_new
      FOR EACH STATEMENT EXECUTE FUNCTION ns_count_update()`,
    `CREATE TRIGGER ns_count_delete AFTER DELETE ON ns_job_execution REFERENCING OLD TABLE AS ns_old
      FOR EACH STATEMENT EXECUTE FUNCTION ns_count_delete()`,
  ];
}

/**
 * Statements that take back what a fully migrated repository has from migrations 12 and later,
 * for tests that upgrade a repository of an older version: each undo below starts with the
 * later migrations' undo, as running those again would create what is already there.
 */
import { drainSchema } from '../../src/repository/migrations/008-drain.ts';
import { endedCountersSchema } from '../../src/repository/migrations/012-ended-counters.ts';
import type { Dialect } from '../../src/repository/tx.ts';

/** Before migration 19: no one-shot or bounded triggers. */
export function undoTriggerTimes(_d: Dialect): string[] {
  return ['once_at', 'start_at', 'end_at'].map((c) => `ALTER TABLE ns_trigger DROP COLUMN ${c}`);
}

/** Before migration 18: version 11's claim function, which running 18 again replaces: nothing else to take back. */
export function undoClaimWindow(d: Dialect): string[] {
  return [...undoTriggerTimes(d)];
}

/** Takes a fully migrated repository back to the version before the last one. */
export const undoLastMigration = undoTriggerTimes;

/** Before migration 17: no index of the live nodes asked to drain. */
export function undoDrainingNodes(d: Dialect): string[] {
  return [...undoClaimWindow(d), `DROP INDEX ns_node_draining`];
}

/** Before migration 16: an instance's executions indexed by instance alone. */
export function undoExecutionsByInstance(d: Dialect): string[] {
  return [...undoDrainingNodes(d), `CREATE INDEX ns_job_execution_instance ON ns_job_execution (instance_id)`, `DROP INDEX ns_job_execution_by_instance`];
}

/** Before migration 15: no index of a job's newest instances. */
export function undoNewestInstance(d: Dialect): string[] {
  return [...undoExecutionsByInstance(d), `DROP INDEX ns_job_instance_run_id`, `DROP INDEX ns_job_instance_job`];
}

/** Back to version 11: before the ended counters of migrations 12 and 13. */
export function undoEndedCounters(d: Dialect): string[] {
  if (d === 'sqlite') {
    return [
      ...undoNewestInstance(d),
      `DROP TRIGGER ns_count_ended`,
      `DROP TRIGGER ns_count_insert`,
      `CREATE TRIGGER ns_count_insert AFTER INSERT ON ns_job_execution BEGIN
        INSERT INTO ns_execution_count (job_name, status, n) VALUES (NEW.job_name, NEW.status, 1)
          ON CONFLICT (job_name, status) DO UPDATE SET n = n + 1;
      END`,
      `ALTER TABLE ns_execution_count DROP COLUMN ended`,
      `ALTER TABLE ns_execution_count_delta DROP COLUMN ended`,
    ];
  }
  return [
    ...undoNewestInstance(d),
    `DROP TRIGGER IF EXISTS ns_count_ended ON ns_job_execution`,
    `DROP FUNCTION IF EXISTS ns_count_ended()`,
    // Version 8's.
    ...drainSchema('postgres').filter((statement) => statement.includes('FUNCTION ns_count_update()')),
    `CREATE OR REPLACE FUNCTION ns_count_insert() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      INSERT INTO ns_execution_count_delta (job_name, status, n)
        SELECT job_name, status, count(*) FROM ns_new GROUP BY job_name, status;
      RETURN NULL;
    END $body$`,
    `ALTER TABLE ns_execution_count DROP COLUMN ended`,
    `ALTER TABLE ns_execution_count_delta DROP COLUMN ended`,
  ];
}

/**
 * Statements that take a fully migrated repository back to the counting of version 12 (a row
 * trigger per end beside version 8's statement trigger), before migration 13 (PostgreSQL; SQLite
 * did not change).
 */
export function undoEndedInStatement(d: Dialect): string[] {
  if (d === 'sqlite') return undoNewestInstance(d);
  return [
    ...undoNewestInstance(d),
    ...drainSchema('postgres').filter((statement) => statement.includes('FUNCTION ns_count_update()')),
    ...endedCountersSchema('postgres').filter((statement) => statement.includes('ns_count_ended')),
  ];
}

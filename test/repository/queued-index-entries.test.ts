/**
 * Migration 7: a queued execution (no owner, no node name yet) has no entry in the indexes of
 * executions by node name and of running executions by owner. A repository written before it
 * upgrades in place, and the reads those indexes serve find the same rows.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { bulkSubmitSchema } from '../../src/repository/migrations/007-bulk-submit.ts';
import { SCHEMA_VERSION, versionOf } from '../../src/repository/schema.ts';
import { SQL } from '../../src/repository/sql.ts';
import { backends } from '../support/backends.ts';
import { undoEndedCounters } from '../support/schema-undo.ts';

/** The two indexes as migrations 1 and 4 made them. */
const BEFORE = [
  `DROP INDEX ns_job_execution_node`,
  `CREATE INDEX ns_job_execution_node ON ns_job_execution (node_name, id)`,
  `DROP INDEX ns_job_execution_running`,
  `CREATE INDEX ns_job_execution_running ON ns_job_execution (owner_node_id) WHERE status IN ('STARTING', 'STARTED', 'STOPPING')`,
];

async function indexDefinitions(db: Database): Promise<Record<string, string>> {
  const rows = db.dialect === 'postgres'
    ? await db.query<{ name: string; sql: string }>(`SELECT indexname AS name, indexdef AS sql FROM pg_indexes
        WHERE schemaname = current_schema() AND indexname IN ('ns_job_execution_node', 'ns_job_execution_running')`)
    : await db.query<{ name: string; sql: string }>(`SELECT name, sql FROM sqlite_master
        WHERE type = 'index' AND name IN ('ns_job_execution_node', 'ns_job_execution_running')`);
  return Object.fromEntries(rows.map((r) => [r.name, r.sql]));
}

describe.each(backends())('queued executions and the node indexes ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('a repository of the previous version upgrades; what nodes run and the list by node read the same rows', async () => {
    const url = backend.freshUrl('queuedidx');
    let db = await openDatabase(url);
    try {
      // Migration 12 adds columns, which running it again on this repository would add twice.
      for (const statement of [...BEFORE, ...undoEndedCounters(db.dialect)]) await db.exec(statement);
      await db.execute(`UPDATE ns_meta SET value = $1 WHERE key = 'schema_version'`, [String(versionOf(bulkSubmitSchema) - 1)]);
      const node = Number((await db.query<{ id: number }>(SQL.insertNode, ['n1', 'c', 'h', 1, 'node', '["j"]', 4, 1000, 3500, 3500]))[0].id);
      const execution = async (who: string, status: string, owned: boolean) => {
        const instance = Number((await db.query<{ id: number }>(SQL.insertInstance, ['j', who, '{}']))[0].id);
        const rows = await db.query<{ id: number }>(SQL.insertExecution, [
          instance, 'j', status, 'UNKNOWN', '{}', owned ? node : null, owned ? 'n1' : null, '{}', null, null]);
        return Number(rows[0].id);
      };
      const running = await execution('a', 'STARTED', true);
      const queued = await execution('b', 'STARTING', false);
      const done = await execution('c', 'COMPLETED', true);
      expect(await indexDefinitions(db)).toMatchObject({ ns_job_execution_node: expect.not.stringMatching(/WHERE/) });
      await db.close();

      db = await openDatabase(url);
      const version = await db.query<{ value: string }>(`SELECT value FROM ns_meta WHERE key = 'schema_version'`);
      expect(Number(version[0].value)).toBe(SCHEMA_VERSION);
      const defs = await indexDefinitions(db);
      expect(defs.ns_job_execution_node).toMatch(/WHERE \(?node_name IS NOT NULL\)?/);
      expect(defs.ns_job_execution_running).toMatch(/owner_node_id IS NOT NULL/);

      const ids = (rows: { id: number | string }[]) => rows.map((r) => Number(r.id));
      expect(ids(await db.query(SQL.runningByNode))).toEqual([running]);
      expect(ids(await db.query(SQL.runningOfNode, [node]))).toEqual([running]);
      expect(ids(await db.query(SQL.activeExecutions))).toEqual([running]);
      expect(ids(await db.query(SQL.listExecutions({ node: true }), [21, 'n1']))).toEqual([done, running]);
      expect(ids(await db.query(SQL.listExecutions({ status: true }), [21, 'STARTING']))).toEqual([queued]);
      // The queue's own reads still see the queued one.
      expect(ids(await db.query(SQL.claim(db.dialect), [node, 'n1', db.dialect === 'postgres' ? ['j'] : '["j"]', 8]))).toEqual([queued]);
      expect(ids(await db.query(SQL.runningByNode))).toEqual([running, queued]);
    } finally {
      await db.close();
    }
  });
});

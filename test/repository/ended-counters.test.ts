/**
 * Migration 12: the counters of ends (`ns_execution_count.ended`) only go up. A repository of
 * version 11 upgrades with the ended executions it holds; then every end counts once in its
 * status, a status change from one ended status to another counts in the new one, and a delete
 * (prune) lowers the counts of executions but not the counters of ends. Deltas folded or not read
 * the same.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { endedCountersSchema as endedCounters } from '../../src/repository/migrations/012-ended-counters.ts';
import { endedInStatementSchema as endedInStatement } from '../../src/repository/migrations/013-ended-in-statement.ts';
import { endedCounts, executionCounts, foldExecutionCounts } from '../../src/repository/retention.ts';
import { SCHEMA_VERSION, versionOf } from '../../src/repository/schema.ts';
import { SQL } from '../../src/repository/sql.ts';
import { backends } from '../support/backends.ts';
import { undoEndedCounters, undoEndedInStatement } from '../support/schema-undo.ts';

type Db = Awaited<ReturnType<typeof openDatabase>>;

/** A repository at `url` taken back to the schema before `migration` by the `undo` statements. */
async function openBefore(url: string, undo: (d: Db['dialect']) => string[], migration: Parameters<typeof versionOf>[0]): Promise<Db> {
  const db = await openDatabase(url);
  for (const statement of undo(db.dialect)) await db.exec(statement);
  await db.execute(`UPDATE ns_meta SET value = $1 WHERE key = 'schema_version'`, [String(versionOf(migration) - 1)]);
  return db;
}

/** A new instance of `job` (`who` tells instances apart) with one execution in `status`; its id. */
async function insertExecution(db: Db, job: string, who: string, status: string): Promise<number> {
  const instance = Number((await db.query<{ id: number }>(SQL.insertInstance, [job, who, '{}']))[0].id);
  return Number((await db.query<{ id: number }>(SQL.insertExecution, [instance, job, status, 'UNKNOWN', '{}', null, null, '{}', null, null]))[0].id);
}

const endedOf = async (db: Db) => Object.fromEntries((await endedCounts(db)).map((r) => [`${r.job}/${r.status}`, r.count]));
const countsOf = async (db: Db) => Object.fromEntries((await executionCounts(db)).map((r) => [`${r.job}/${r.status}`, r.count]));
const schemaVersion = async (db: Db) => Number((await db.query<{ value: string }>(`SELECT value FROM ns_meta WHERE key = 'schema_version'`))[0].value);

describe.each(backends())('counters of ends ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('start at the ended executions of an upgraded repository, count each end, and a delete does not lower them', async () => {
    const url = backend.freshUrl('endedctr');
    let db = await openBefore(url, undoEndedCounters, endedCounters);
    try {
      const execution = (job: string, who: string, status: string) => insertExecution(db, job, who, status);
      await execution('a', '1', 'COMPLETED');
      await execution('a', '2', 'COMPLETED');
      const failed = await execution('a', '3', 'FAILED');
      const queued = await execution('b', '1', 'STARTING');
      await db.close();

      db = await openDatabase(url);
      expect(await schemaVersion(db)).toBe(SCHEMA_VERSION);
      const ended = () => endedOf(db);
      const counts = () => countsOf(db);
      expect(await ended()).toEqual({ 'a/COMPLETED': 2, 'a/FAILED': 1 });

      // An insert in an ended status, ends, and a change from one ended status to another.
      await execution('b', '2', 'STOPPED');
      await db.execute(`UPDATE ns_job_execution SET status = 'STARTED' WHERE id = $1`, [queued]);
      expect(await ended()).toEqual({ 'a/COMPLETED': 2, 'a/FAILED': 1, 'b/STOPPED': 1 });
      await db.execute(`UPDATE ns_job_execution SET status = 'FAILED' WHERE id = $1`, [queued]);
      await db.execute(`UPDATE ns_job_execution SET status = 'ABANDONED' WHERE id = $1`, [failed]);
      // An update that leaves the status as it was counts nothing.
      await db.execute(`UPDATE ns_job_execution SET status = status, exit_code = 'FAILED' WHERE id = $1`, [queued]);
      const afterEnds = { 'a/COMPLETED': 2, 'a/FAILED': 1, 'a/ABANDONED': 1, 'b/STOPPED': 1, 'b/FAILED': 1 };
      expect(await ended()).toEqual(afterEnds);
      await foldExecutionCounts(db);
      expect(await ended()).toEqual(afterEnds);
      expect(await counts()).toEqual({ 'a/COMPLETED': 2, 'a/ABANDONED': 1, 'b/STOPPED': 1, 'b/FAILED': 1 });

      // Many executions ending in one statement (a grouped end), beside one that only changes
      // its context: each end counts once.
      const many = [await execution('c', '1', 'STARTED'), await execution('c', '2', 'STARTED'), await execution('c', '3', 'STARTED')];
      await db.execute(`UPDATE ns_job_execution SET status = CASE WHEN id = $2 THEN 'STARTED' WHEN id = $4 THEN status ELSE 'COMPLETED' END,
        exit_description = 'changed' WHERE id IN ($1, $2, $3) OR id = $4`, [...many, failed]);
      const afterGroup = { ...afterEnds, 'c/COMPLETED': 2 };
      expect(await ended()).toEqual(afterGroup);
      expect(await counts()).toMatchObject({ 'c/COMPLETED': 2, 'c/STARTED': 1, 'a/ABANDONED': 1 });
      await foldExecutionCounts(db);
      expect(await ended()).toEqual(afterGroup);

      // Deleting history lowers the counts, not the counters of ends.
      await db.exec(`DELETE FROM ns_job_execution`);
      expect(await counts()).toEqual({});
      expect(await ended()).toEqual(afterGroup);
      await foldExecutionCounts(db);
      expect(await ended()).toEqual(afterGroup);
    } finally {
      await db.close();
    }
  });

  it('a repository of version 12 upgrades without counting an end twice or losing one', async () => {
    const url = backend.freshUrl('endedv12');
    let db = await openBefore(url, undoEndedInStatement, endedInStatement);
    try {
      const execution = (who: string, status: string) => insertExecution(db, 'a', who, status);
      const end = (ids: number[], status: string) => db.execute(`UPDATE ns_job_execution SET status = $1 WHERE id IN (${ids.join(', ')})`, [status]);
      const ids = [await execution('1', 'STARTED'), await execution('2', 'STARTED'), await execution('3', 'STARTED'), await execution('4', 'STARTED')];
      // Ended under version 12's triggers.
      await end(ids.slice(0, 2), 'COMPLETED');
      await db.close();

      db = await openDatabase(url);
      expect(await schemaVersion(db)).toBe(SCHEMA_VERSION);
      const ended = () => endedOf(db);
      expect(await ended()).toEqual({ 'a/COMPLETED': 2 });
      // Ended under the upgraded repository's: once each.
      await end(ids.slice(2), 'COMPLETED');
      await end([ids[0]], 'FAILED');
      expect(await ended()).toEqual({ 'a/COMPLETED': 4, 'a/FAILED': 1 });
      await foldExecutionCounts(db);
      expect(await ended()).toEqual({ 'a/COMPLETED': 4, 'a/FAILED': 1 });
    } finally {
      await db.close();
    }
  });
});

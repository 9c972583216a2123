import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { backends } from '../support/backends.ts';
import { seedHistory } from '../support/history.ts';
import { hotQueries, planProblems } from '../support/hot-queries.ts';

const ROWS = 100_000;

describe.each(backends())('hot history queries use indexes at 100k executions ($name)', (backend) => {
  let db: Database;
  let seeded: { lastId: number; now: number };
  beforeAll(async () => {
    db = await openDatabase(backend.freshUrl('plans'));
    const { lastId } = await seedHistory(db, { count: ROWS, newestAgeMs: 0 });
    if (db.dialect === 'postgres') await db.exec('ANALYZE');
    else await db.exec('ANALYZE');
    seeded = { lastId, now: Date.now() };
  }, 240_000);
  afterAll(async () => {
    await db?.close();
    await backend.cleanup();
  });

  it('no hot query scans or sorts the history tables', async () => {
    const bad: string[] = [];
    for (const q of hotQueries(db.dialect, seeded)) {
      const { plan, problems } = await planProblems((sql, params) => db.query(sql, params), db.dialect, q);
      if (problems.length) bad.push(`${q.name}: ${problems.join('; ')}\n${plan}`);
    }
    expect(bad).toEqual([]);
  });

  it('the check sees a scan when there is one', async () => {
    // The same checker on a query no index serves: it must complain, or the test above proves nothing.
    const { problems } = await planProblems((sql, params) => db.query(sql, params), db.dialect, {
      name: 'unindexed', sql: `SELECT id FROM ns_job_execution e WHERE e.exit_description = $1`, params: ['x'],
    });
    expect(problems.length).toBeGreaterThan(0);
  });
});

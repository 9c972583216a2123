import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/repository/database.ts';
import { createJobExplorer } from '../../src/repository/job-repository.ts';
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

  it('the check sees a plan that does not read the index it must', async () => {
    // COMPLETED is not in the partial index's statuses: the plan reads another index.
    const q = hotQueries(db.dialect, seeded).find((x) => x.name === 'list by status and node, none match')!;
    const { problems } = await planProblems((sql, params) => db.query(sql, params), db.dialect, {
      ...q, sql: q.sql.replace(/ AND e\.status IN \([^)]*\)/, ''), params: [21, 'COMPLETED', 'node-gone'],
    });
    expect(problems).toEqual(['does not read ns_job_execution_node_ended']);
  });

  it('status and node filters list what they say, newest first', async () => {
    const explorer = createJobExplorer(db);
    // Seeded: STOPPED every 97th id, FAILED every 47th (not 97th), node = id % 5.
    for (const status of ['FAILED', 'STOPPED', 'COMPLETED'] as const) {
      const page = await explorer.pageExecutions({ status, node: 'node2', limit: 30 });
      const expected: number[] = [];
      for (let id = seeded.lastId; expected.length < 30; id--) {
        const s = id % 97 === 0 ? 'STOPPED' : id % 47 === 0 ? 'FAILED' : 'COMPLETED';
        if (s === status && id % 5 === 2) expected.push(id);
      }
      expect(page.executions.map((e) => e.id)).toEqual(expected);
      expect(page.nextCursor).toBe(expected[29]);
    }
    expect(await explorer.pageExecutions({ status: 'FAILED', node: 'node-gone' })).toEqual({ executions: [], nextCursor: null });
  });

  it('the check sees a scan when there is one', async () => {
    // The same checker on a query no index serves: it must complain, or the test above proves nothing.
    const { problems } = await planProblems((sql, params) => db.query(sql, params), db.dialect, {
      name: 'unindexed', sql: `SELECT id FROM ns_job_execution e WHERE e.exit_description = $1`, params: ['x'],
    });
    expect(problems.length).toBeGreaterThan(0);
  });
});

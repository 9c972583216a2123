/**
 * Grouped job ends (PostgreSQL): the ends of many executions go as one statement, and each is
 * still fenced on its own. A group that fails for a reason of one call's own runs every call
 * alone, so that only that call fails.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/repository/database.ts';
import { runGrouped } from '../../src/repository/grouped-statement.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { SQL } from '../../src/repository/sql.ts';
import { backends } from '../support/backends.ts';

const pgBackend = backends().find((b) => b.name === 'postgres')!;
const END = { sql: { one: SQL.finishExecutionEndingStep, many: SQL.finishExecutionsEndingSteps } };

/** `n` running executions of node 1 at epoch 1, each with its running step: [execution id, step id]. */
async function running(db: Database, n: number): Promise<[number, number][]> {
  const [node] = await db.query<{ id: number }>(SQL.insertNode, ['n1', 'default', 'h', 1, 'node', '["j"]', 4, 1000, 3500, 3500]);
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const [inst] = await db.query<{ id: number }>(
      `INSERT INTO ns_job_instance (job_name, job_key, identifying_params, create_time) VALUES ('j', $1, '{}', ns_now()) RETURNING id`, [`k${i}`],
    );
    const [e] = await db.query<{ id: number }>(
      `INSERT INTO ns_job_execution (instance_id, job_name, status, exit_code, params, create_time, owner_node_id, owner_epoch)
        VALUES ($1, 'j', 'STARTED', 'EXECUTING', '{}', ns_now(), $2, 1) RETURNING id`, [inst.id, node.id],
    );
    const [s] = await db.query<{ id: number }>(
      `INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, context) VALUES ($1, 's', 'STARTED', 'EXECUTING', '{}') RETURNING id`, [e.id],
    );
    out.push([Number(e.id), Number(s.id)]);
  }
  return out;
}

/** finishExecutionEndingStep's parameters: the execution's end, then its step's. */
const endOf = (execution: number, step: number, epoch = 1, status = 'COMPLETED') => [
  execution, 1, epoch, status, status, '', '{}', step, 0, 0, 0, 0, 0, 0, 1, 0, '{}', status, status, '',
];

const statuses = async (db: Database) =>
  (await db.query<{ id: number; status: string; step: string }>(
    `SELECT e.id, e.status, s.status AS step FROM ns_job_execution e JOIN ns_step_execution s ON s.job_execution_id = e.id ORDER BY e.id`,
  )).map((r) => `${r.id}:${r.status}/${r.step}`);

describe('grouped job ends (postgres)', () => {
  afterAll(() => pgBackend.cleanup());

  it('ends many executions in one group; one whose owner lost it is left alone and told so', async () => {
    const db = await openDatabase(pgBackend.freshUrl('grouped'));
    try {
      const [a, b, c] = await running(db, 3);
      // b was taken over: its epoch moved on.
      await db.execute('UPDATE ns_job_execution SET owner_epoch = 2 WHERE id = $1', [b[0]]);
      const results = await Promise.all([runGrouped(db, END, endOf(...a)), runGrouped(db, END, endOf(...b)), runGrouped(db, END, endOf(...c, 1, 'FAILED'))]);
      expect(results.map((r) => r.length)).toEqual([1, 0, 1]);
      expect(await statuses(db)).toEqual([`${a[0]}:COMPLETED/COMPLETED`, `${b[0]}:STARTED/STARTED`, `${c[0]}:FAILED/FAILED`]);
      // One statement: both ends committed in one transaction.
      const xmins = await db.query<{ x: string }>('SELECT xmin::text AS x FROM ns_job_execution WHERE id = ANY($1::bigint[])', [[a[0], c[0]]]);
      expect(new Set(xmins.map((r) => r.x)).size).toBe(1);
      // The status counters saw each change once.
      const counts = await db.query<{ status: string; n: number }>(
        `SELECT status, sum(n) AS n FROM (SELECT status, n FROM ns_execution_count UNION ALL SELECT status, n FROM ns_execution_count_delta) x
          GROUP BY status HAVING sum(n) <> 0 ORDER BY status`,
      );
      expect(counts.map((r) => `${r.status}:${Number(r.n)}`)).toEqual(['COMPLETED:1', 'FAILED:1', 'STARTED:1']);
    } finally {
      await db.close();
    }
  });

  it('a call whose values the grouped statement refuses fails alone; the others of its group end', async () => {
    const db = await openDatabase(pgBackend.freshUrl('groupedbad'));
    try {
      const [a, b, c] = await running(db, 3);
      const bad = endOf(...b);
      bad[14] = 'not a number'; // its step's commit count
      const results = await Promise.allSettled([runGrouped(db, END, endOf(...a)), runGrouped(db, END, bad), runGrouped(db, END, endOf(...c))]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/invalid input syntax/);
      expect(await statuses(db)).toEqual([`${a[0]}:COMPLETED/COMPLETED`, `${b[0]}:STARTED/STARTED`, `${c[0]}:COMPLETED/COMPLETED`]);
    } finally {
      await db.close();
    }
  });
});

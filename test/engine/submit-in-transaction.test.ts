/**
 * `submitInTransaction`: a submit inside a PostgreSQL transaction of the application's own, on
 * its own connection (whose search path does not name the repository's schema). The execution
 * exists, and a node runs it, only once that transaction commits; a rollback leaves nothing; a
 * refused submit leaves the application's transaction usable and its search path as it was; a
 * client not in a transaction, and an SQLite repository, are refused with one line.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchRefusedError, ParameterError, UsageError } from '../../src/core/errors.ts';
import { defineJob } from '../../src/core/job.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { p } from '../../src/core/params.ts';
import { startNode } from '../../src/cluster/node.ts';
import { createNightshift } from '../../src/operator.ts';
import { backends, PG_BASE, waitFor } from '../support/backends.ts';
import { rejection } from '../fixtures/engine/support.ts';

const invoice = defineJob({
  name: 'invoice',
  params: { order: p.int({ required: true }) },
  steps: (s) => [s.tasklet({ name: 'bill', tasklet: () => undefined })],
});

const [sqlite, postgres] = backends();

describe('submitInTransaction (postgres)', () => {
  const app = new pg.Client({ connectionString: PG_BASE });
  const table = `orders_${process.pid}`;
  afterAll(async () => {
    await app.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await app.end();
    await postgres.cleanup();
  });

  it('the execution and the application rows commit together, and a node runs it only then; a rollback leaves neither', async () => {
    const url = postgres.freshUrl('intx');
    const ns = await createNightshift({ db: url, jobs: [invoice], logger: silentLogger });
    const node = await startNode({ db: url, jobs: [invoice], name: 'worker', pollMs: 5000, scheduler: false, logger: silentLogger });
    try {
      await app.connect();
      await app.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
      const before = (await app.query<{ search_path: string }>('SHOW search_path')).rows[0].search_path;

      await app.query('BEGIN');
      await app.query(`INSERT INTO ${table} VALUES (1)`);
      const submitted = await ns.submitInTransaction(app, 'invoice', { order: 1 });
      expect(submitted).toMatchObject({ jobName: 'invoice', status: 'STARTING' });
      expect((await app.query<{ search_path: string }>('SHOW search_path')).rows[0].search_path).toBe(before);
      // Not yet committed: nobody else sees it, and no node takes it.
      expect(await ns.getExecution(submitted.id)).toBeUndefined();
      await app.query('COMMIT');
      // The commit's notification wakes the node long before its 5 s poll.
      const started = Date.now();
      await waitFor(async () => (await ns.getExecution(submitted.id))?.status === 'COMPLETED', 4000, 'the committed submit run by the node');
      expect(Date.now() - started).toBeLessThan(4000);
      expect((await app.query(`SELECT id FROM ${table}`)).rows).toEqual([{ id: 1 }]);

      await app.query('BEGIN');
      await app.query(`INSERT INTO ${table} VALUES (2)`);
      const rolledBack = await ns.submitInTransaction(app, 'invoice', { order: 2 });
      await app.query('ROLLBACK');
      expect(await ns.getExecution(rolledBack.id)).toBeUndefined();
      expect((await ns.listExecutions()).map((e) => e.id)).toEqual([submitted.id]);
      expect((await app.query(`SELECT id FROM ${table} ORDER BY id`)).rows).toEqual([{ id: 1 }]);
    } finally {
      await node.shutdown();
      await ns.close();
    }
  });

  it('a refused submit leaves the transaction usable; a client not in a transaction is refused and nothing is written', async () => {
    const url = postgres.freshUrl('intxrefused');
    const ns = await createNightshift({ db: url, jobs: [invoice], logger: silentLogger });
    try {
      const done = await ns.run('invoice', { order: 7 });
      expect(done.status).toBe('COMPLETED');
      const before = (await app.query<{ search_path: string }>('SHOW search_path')).rows[0].search_path;
      await app.query('BEGIN');
      await app.query(`INSERT INTO ${table} VALUES (7)`);
      const refused = await rejection(ns.submitInTransaction(app, 'invoice', { order: 7 }));
      expect(refused).toBeInstanceOf(LaunchRefusedError);
      expect(refused.message).toContain(`job invoice already completed for parameters order=7 (execution ${done.id})`);
      expect(await rejection(ns.submitInTransaction(app, 'invoice', { order: 'seven' } as never))).toBeInstanceOf(ParameterError);
      // The application's transaction goes on: its row commits, its search path is its own.
      expect((await app.query<{ search_path: string }>('SHOW search_path')).rows[0].search_path).toBe(before);
      await app.query(`INSERT INTO ${table} VALUES (8)`);
      const eight = await ns.submitInTransaction(app, 'invoice', { order: 8 });
      await app.query('COMMIT');
      expect((await app.query(`SELECT id FROM ${table} WHERE id IN (7, 8) ORDER BY id`)).rows).toEqual([{ id: 7 }, { id: 8 }]);
      expect(await ns.getExecution(eight.id)).toMatchObject({ status: 'STARTING' });

      const outside = await rejection(ns.submitInTransaction(app, 'invoice', { order: 9 }));
      expect(outside).toBeInstanceOf(UsageError);
      expect(outside.message).toBe('submitInTransaction needs the client in a transaction: BEGIN first; the submit takes effect when you COMMIT');
      expect((await ns.listExecutions()).map((e) => e.id).sort()).toEqual([done.id, eight.id].sort());
      expect(await rejection(ns.submitInTransaction({} as never, 'invoice', { order: 9 }))).toMatchObject({
        message: 'submitInTransaction needs a pg Client or PoolClient of yours, in a transaction you began (BEGIN) and will commit',
      });
    } finally {
      await ns.close();
    }
  });
});

describe('submitInTransaction (sqlite)', () => {
  afterAll(() => sqlite.cleanup());
  it('is refused on an SQLite repository, naming it', async () => {
    const ns = await createNightshift({ db: sqlite.freshUrl('intx'), jobs: [invoice], logger: silentLogger });
    try {
      const err = await rejection(ns.submitInTransaction({} as never, 'invoice', { order: 1 }));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toMatch(/^submitInTransaction needs a PostgreSQL job repository \(this one is sqlite:.*\): use submit$/);
    } finally {
      await ns.close();
    }
  });
});

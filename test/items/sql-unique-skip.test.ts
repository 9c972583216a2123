/**
 * A Spring Batch job skips a DuplicateKeyException on any database; here `isUniqueViolation` is
 * that matcher: a duplicate row met by `sqlWriter` is isolated and skipped, the rest of its
 * chunk written, on SQLite and PostgreSQL alike.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createNightshift, defineJob, ensureTable, isUniqueViolation, rangeReader, silentLogger, sqlWriter } from '../../src/index.ts';
import { backends } from '../support/backends.ts';

describe.each(backends())('isUniqueViolation on %s', (backend) => {
  afterAll(() => backend.cleanup());

  it('skips the rows whose key is already there, names them, and writes every other row once', async () => {
    const skipped: string[] = [];
    const load = defineJob({
      name: 'load',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => rangeReader(1, 30),
          writer: ({ db }) => ({
            open: () => ensureTable(db, 'CREATE TABLE IF NOT EXISTS dst (id INTEGER PRIMARY KEY)'),
            ...sqlWriter<number>({ table: 'dst', columns: ['id'], values: (n) => [n] }),
          }),
          skip: { on: [isUniqueViolation], limit: 5 },
          chunkListeners: [{ onSkip: (skip) => void skipped.push(`${skip.phase === 'read' ? '-' : skip.item}: ${(skip.error as Error).message}`) }],
        }),
      ],
    });
    const ns = await createNightshift({ db: backend.freshUrl('uniqskip'), jobs: [load], logger: silentLogger });
    try {
      await ns.db.exec('CREATE TABLE dst (id INTEGER PRIMARY KEY)');
      await ns.db.exec('INSERT INTO dst (id) VALUES (5), (17)');
      const e = await ns.run('load');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(e.steps[0]).toMatchObject({ readCount: 30, writeCount: 28, writeSkipCount: 2 });
      expect(skipped.map((s) => s.split(':')[0])).toEqual(['5', '17']);
      expect(skipped[0]).toMatch(/^5: sqlWriter INSERT into dst: /);
      if (backend.name === 'postgres') expect(skipped[0]).toMatch(/Key \(id\)=\(5\) already exists/);
      const [row] = await ns.db.query<{ n: number; d: number }>('SELECT count(*) AS n, count(DISTINCT id) AS d FROM dst');
      expect([Number(row.n), Number(row.d)]).toEqual([30, 30]);
      // Other errors are not unique violations.
      expect([new Error('x'), { code: '23503' }, null, undefined, 'SQLITE_CONSTRAINT_UNIQUE'].map(isUniqueViolation)).toEqual([false, false, false, false, false]);
    } finally {
      await ns.close();
    }
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { backends } from '../support/backends.ts';
import { itWhen } from '../support/skip.ts';

// Both dialects take the same `$n` placeholders. SQLite binds positionally, so its dialect
// reorders the parameters when the placeholders are out of order or repeated, and converts the
// values SQLite refuses (booleans, dates); undefined is bound as NULL on both.
describe.each(backends())('statement parameters ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('bind in placeholder order, repeated placeholders included, in and out of transactions', async () => {
    const db = await openDatabase(backend.freshUrl('params'));
    try {
      await db.exec('CREATE TABLE t (a BIGINT, b TEXT, c BIGINT)');
      await db.execute('INSERT INTO t (a, b, c) VALUES ($1, $2, $3)', [1, 'one', 10]);
      await db.execute('INSERT INTO t (c, b, a) VALUES ($3, $2, $1)', [2, 'two', 20]);
      await db.transaction(async (tx) => {
        await tx.execute('INSERT INTO t (a, b, c) VALUES ($2, $1, $3)', ['three', 3, 30]);
        await tx.execute('INSERT INTO t (a, b, c) VALUES ($1, $2, $3)', [4, undefined, 40]);
      });
      // Hundreds of other statement texts (more than a connection keeps prepared) change nothing.
      for (let i = 0; i < 300; i++) expect(await db.query(`SELECT ${i} AS n`)).toEqual([{ n: i }]);
      const rows = await db.query<{ a: number; b: string | null; c: number }>('SELECT a, b, c FROM t WHERE a >= $1 AND c >= $1 * 10 ORDER BY a', [1]);
      expect(rows.map((r) => [Number(r.a), r.b, Number(r.c)])).toEqual([
        [1, 'one', 10],
        [2, 'two', 20],
        [3, 'three', 30],
        [4, null, 40],
      ]);
    } finally {
      await db.close();
    }
  });

  itWhen(backend.name === 'sqlite', 'SQLite only: its type conversions')('convert booleans and dates, whatever the placeholder order', async () => {
    const db = await openDatabase(backend.freshUrl('convert'));
    try {
      await db.exec('CREATE TABLE t (flag INTEGER, at INTEGER, n INTEGER)');
      const at = new Date('2024-01-15T10:18:00.000Z');
      await db.execute('INSERT INTO t (flag, at, n) VALUES ($1, $2, $3)', [true, at, 1]);
      await db.execute('INSERT INTO t (n, at, flag) VALUES ($3, $2, $1)', [false, at, 2]);
      expect(await db.query('SELECT flag, at, n FROM t ORDER BY n')).toEqual([
        { flag: 1, at: at.getTime(), n: 1 },
        { flag: 0, at: at.getTime(), n: 2 },
      ]);
      // A value neither SQLite nor the conversion can bind fails the statement and writes nothing.
      await expect(db.execute('INSERT INTO t (flag, at, n) VALUES ($1, $2, $3)', [Symbol('x'), at, 3])).rejects.toThrow(/can only bind/);
      expect(await db.query('SELECT n FROM t ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    } finally {
      await db.close();
    }
  });
});

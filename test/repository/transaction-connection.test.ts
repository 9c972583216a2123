import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { keepPrepared } from '../../src/repository/prepared.ts';
import { backends, type Backend } from '../support/backends.ts';

/** Runs `fn` on a fresh repository with a pool of `poolSize`, then closes it. */
async function withDb(backend: Backend, poolSize: number, fn: (db: Database) => Promise<void>): Promise<void> {
  const db = await openDatabase(backend.freshUrl('linger'), { poolSize });
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

const insert = (db: Database, n: number) => db.transaction(async (tx) => void (await tx.execute('INSERT INTO t (n) VALUES ($1)', [n])));
const values = async (db: Database) => (await db.query<{ n: number }>('SELECT n FROM t ORDER BY n')).map((r) => Number(r.n));

// On PostgreSQL a transaction's connection stays with its caller until the event loop turns, so
// that a chunk loop's next transaction needs no trip through the pool (see postgres.ts).
describe.each(backends())('connections of back-to-back transactions ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('a pool of one serves a transaction and the query right after it', () =>
    withDb(backend, 1, async (db) => {
      await db.exec('CREATE TABLE t (n INTEGER NOT NULL)');
      await insert(db, 1);
      // A plain query takes its connection from the pool, whose only one the transaction still holds.
      expect(await db.query<{ c: number }>('SELECT COUNT(*) AS c FROM t')).toEqual([{ c: 1 }]);
      await insert(db, 2);
      expect(await values(db)).toEqual([1, 2]);
    }));

  it('many concurrent transactions on a small pool all commit, each exactly once', () =>
    withDb(backend, 2, async (db) => {
      await db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const expected = Array.from({ length: 6 }, (_, w) => Array.from({ length: 20 }, (_, i) => w * 100 + i));
      await Promise.all(expected.map(async (ns) => {
        for (const n of ns) await insert(db, n);
      }));
      expect(await values(db)).toEqual(expected.flat());
    }));

  it('a failed transaction rolls back and the next one commits on a sound connection', () =>
    withDb(backend, 1, async (db) => {
      await db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      await insert(db, 1);
      await expect(
        db.transaction(async (tx) => {
          await tx.execute('INSERT INTO t (n) VALUES ($1)', [2]);
          await tx.execute('INSERT INTO t (n) VALUES ($1)', [1]);
        }),
      ).rejects.toThrow(/unique|UNIQUE/);
      await insert(db, 3);
      expect(await values(db)).toEqual([1, 3]);
    }));
});

// A chunk's last statement, kept prepared as the checkpoint is: it fails on a key already in u.
const LAST = keepPrepared('INSERT INTO u (k) VALUES ($1)');

/** A chunk-like transaction: a row into t, then LAST sent with the COMMIT (failing when `fail`). */
const chunk = (db: Database, n: number, fail = false) =>
  db.transactionEndingWith(async (tx) => {
    await tx.execute('INSERT INTO t (n) VALUES ($1)', [n]);
    return { value: n, last: { sql: LAST, params: [fail ? 0 : n] } };
  });

const chunkTables = (db: Database) => db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY); CREATE TABLE u (k INTEGER PRIMARY KEY); INSERT INTO u (k) VALUES (0)');

describe.each(backends())('chunk transactions one after another ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('commit exactly what succeeded, also when one fails at its last statement', () =>
    withDb(backend, 1, async (db) => {
      await chunkTables(db);
      for (const n of [1, 2, 3]) await chunk(db, n);
      await expect(chunk(db, 4, true)).rejects.toThrow(/unique|UNIQUE/);
      for (const n of [5, 6]) await chunk(db, n);
      // A transaction of another kind right after, then a plain query.
      await insert(db, 7);
      expect(await values(db)).toEqual([1, 2, 3, 5, 6, 7]);
    }));
});

describe('chunk transactions one after another (postgres)', () => {
  const [, backend] = backends();
  afterAll(() => backend.cleanup());
  const PID = keepPrepared('SELECT pg_backend_pid() AS pid, $1::int AS n');

  it("begin with the previous one's COMMIT, and a begun transaction nobody claims ends", () =>
    withDb(backend, 2, async (db) => {
      await chunkTables(db);
      for (const n of [1, 2, 3]) await chunk(db, n);
      // This thread pauses without letting the event loop turn, as a chunk's processing would:
      // the next transaction has been open since the COMMIT before the pause.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30);
      const [opened] = await db.transaction((tx) =>
        tx.query<{ open_ms: number }>('SELECT EXTRACT(EPOCH FROM statement_timestamp() - now()) * 1000 AS open_ms'),
      );
      expect(Number(opened.open_ms)).toBeGreaterThanOrEqual(25);

      // Chunks again, then nothing: the transaction the last COMMIT began is rolled back.
      await chunk(db, 4);
      const { rows } = await db.transactionEndingWith<undefined, { pid: number }>(async (tx) => {
        await tx.execute('INSERT INTO t (n) VALUES ($1)', [5]);
        return { value: undefined, last: { sql: PID, params: [5] } };
      });
      const watcher = await openDatabase(backend.freshUrl('linger-watch'));
      try {
        const stateOf = async () =>
          (await watcher.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [rows[0].pid]))[0]?.state;
        const deadline = Date.now() + 5000;
        let state = await stateOf();
        while (state !== 'idle' && Date.now() < deadline) state = await stateOf();
        expect(state).toBe('idle');
      } finally {
        await watcher.close();
      }
      expect(await values(db)).toEqual([1, 2, 3, 4, 5]);
    }));
});

describe('closing the database (postgres)', () => {
  const [, backend] = backends();
  afterAll(() => backend.cleanup());

  it('closing right after a transaction does not wait for its connection', async () => {
    const db = await openDatabase(backend.freshUrl('linger-close'), { poolSize: 1 });
    await db.transaction(async (tx) => void (await tx.query('SELECT 1')));
    const t0 = Date.now();
    await db.close();
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { cursorReader, pagingReader } from '../../src/items/sql-reader.ts';
import { copyRows, insertRows, sqlWriter } from '../../src/items/sql-writer.ts';
import { ensureTable } from '../../src/items/ensure-table.ts';
import type { ItemStreamReader } from '../../src/core/items.ts';
import { backends } from '../support/backends.ts';
import { itWhen } from '../support/skip.ts';

/** What `promise` rejects with (the test fails if it resolves). */
async function failure(promise: unknown): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

async function drain<T>(reader: ItemStreamReader<T>, max = Infinity): Promise<T[]> {
  const out: T[] = [];
  while (out.length < max) {
    const v = await reader.read();
    if (v === undefined) break;
    out.push(v);
  }
  return out;
}

describe.each(backends())('SQL items on %s', (backend) => {
  afterAll(() => backend.cleanup());

  const seeded = async (rows: number) => {
    const db = await openDatabase(backend.freshUrl('sqlitems'));
    await db.exec('CREATE TABLE src (id INTEGER PRIMARY KEY, name TEXT)');
    await db.transaction((tx) => insertRows(tx, 'src', ['id', 'name'], Array.from({ length: rows }, (_, i) => [i + 1, `n${i + 1}`])));
    return db;
  };

  it('paging reader reads every row in key order and restarts after the last saved key', async () => {
    const db = await seeded(95);
    const first = pagingReader<{ id: number }>({ db, select: 'SELECT id, name FROM src', key: 'id', pageSize: 10 });
    const ctx: Record<string, unknown> = {};
    await first.open?.(ctx);
    const head = await drain(first, 37);
    first.update?.(ctx);
    await drain(first, 5); // read but never committed
    const second = pagingReader<{ id: number }>({ db, select: 'SELECT id, name FROM src', key: 'id', pageSize: 10 });
    await second.open?.(JSON.parse(JSON.stringify(ctx)));
    const tail = await drain(second);
    expect([...head, ...tail].map((r) => Number(r.id))).toEqual(Array.from({ length: 95 }, (_, i) => i + 1));
    await db.close();
  });

  it('cursor reader streams on its own connection and restarts at the saved position', async () => {
    const db = await seeded(120);
    const select = 'SELECT id FROM src ORDER BY id';
    const first = cursorReader<{ id: number }>({ db, select, fetchSize: 16 });
    const ctx: Record<string, unknown> = {};
    await first.open?.(ctx);
    const head = await drain(first, 50);
    first.update?.(ctx);
    await first.close?.();
    const second = cursorReader<{ id: number }>({ db, select, fetchSize: 16 });
    await second.open?.(JSON.parse(JSON.stringify(ctx)));
    const tail = await drain(second);
    await second.close?.();
    expect([...head, ...tail].map((r) => Number(r.id))).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    await db.close();
  });

  it('sql writer inserts inside the given transaction, splitting statements at the parameter limit', async () => {
    const db = await openDatabase(backend.freshUrl('sqlwriter'));
    await db.exec('CREATE TABLE dst (a INTEGER, b TEXT, c TEXT)');
    const writer = sqlWriter<number>({ table: 'dst', columns: ['a', 'b', 'c'], values: (n) => [n, `b${n}`, null] });
    const items = Array.from({ length: 25_000 }, (_, i) => i);
    await db.transaction((tx) => Promise.resolve(writer.write(items, { tx, context: {}, jobExecutionId: 1, stepExecutionId: 1 })));
    await expect(
      db.transaction(async (tx) => {
        await writer.write([1, 2, 3], { tx, context: {}, jobExecutionId: 1, stepExecutionId: 1 });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const [row] = await db.query<{ n: number; d: number }>('SELECT count(*) AS n, count(DISTINCT a) AS d FROM dst');
    expect(Number(row.n)).toBe(25_000);
    expect(Number(row.d)).toBe(25_000);
    await db.close();
  });

  itWhen(backend.name === 'postgres', 'PostgreSQL only: COPY')('COPY loads rows with tabs, newlines, backslashes and nulls intact', async () => {
    const db = await openDatabase(backend.freshUrl('copy'));
    await db.exec('CREATE TABLE dst (a INTEGER, b TEXT)');
    const rows = [[1, 'tab\there'], [2, 'new\nline'], [3, 'back\\slash'], [4, null]];
    await db.transaction((tx) => copyRows(tx, 'dst', ['a', 'b'], rows));
    const got = await db.query<{ a: number; b: string | null }>('SELECT a, b FROM dst ORDER BY a');
    expect(got.map((r) => [Number(r.a), r.b])).toEqual(rows);
    await db.close();
  });

  itWhen(backend.name === 'postgres', 'PostgreSQL only: COPY')('COPY keeps \\r, a literal \\N and unicode; a failing COPY rejects and leaves the connection usable', async () => {
    const db = await openDatabase(backend.freshUrl('copyerr'));
    await db.exec('CREATE TABLE dst (a INTEGER PRIMARY KEY, b TEXT)');
    const rows = [[1, 'cr\rhere'], [2, '\\N'], [3, 'Zoë 日本 🗼'], [4, '']];
    await db.transaction((tx) => copyRows(tx, 'dst', ['a', 'b'], rows));
    await expect(db.transaction((tx) => copyRows(tx, 'dst', ['a', 'b'], [[5, 'x'], [1, 'duplicate']]))).rejects.toThrow(/duplicate key/);
    await db.transaction((tx) => copyRows(tx, 'dst', ['a', 'b'], [[6, 'after']]));
    const got = await db.query<{ a: number; b: string | null }>('SELECT a, b FROM dst ORDER BY a');
    expect(got.map((r) => [Number(r.a), r.b])).toEqual([...rows, [6, 'after']]);
    await db.close();
  });

  it('ensureTable: many sessions creating the same table at once all succeed; a clashing name still fails', async () => {
    const db = await openDatabase(backend.freshUrl('ensure'));
    const failures: string[] = [];
    for (let round = 0; round < 30; round++) {
      const ddl = `CREATE TABLE IF NOT EXISTS raced_${round} (a INTEGER)`;
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => ensureTable(db, ddl)));
      for (const r of results) if (r.status === 'rejected') failures.push(`round ${round}: ${(r.reason as Error).message}`);
    }
    expect(failures).toEqual([]);
    for (let round = 0; round < 30; round++) expect(await db.query(`SELECT count(*) AS n FROM raced_${round}`)).toEqual([{ n: 0 }]);
    if (backend.name === 'postgres') {
      await db.exec("CREATE TYPE clash AS ENUM ('a')");
      await expect(ensureTable(db, 'CREATE TABLE IF NOT EXISTS clash (a INTEGER)')).rejects.toThrow(/type "clash" already exists/);
    }
    await db.close();
  });

  it('a reader whose query fails names the reader and its query; the error keeps its class and code', async () => {
    const db = await seeded(3);
    const badColumn = backend.name === 'postgres' ? /column "nope" does not exist/ : /no such column: nope/;
    const select = 'SELECT id,\n  nope FROM src';
    const paging = pagingReader({ db, select, key: 'id' });
    await paging.open?.({});
    const pagingError = await failure(paging.read());
    expect(pagingError.message).toMatch(badColumn);
    expect(pagingError.message).toMatch(/^pagingReader: .* in: SELECT id, nope FROM src$/);
    expect(pagingError.code).toBe(backend.name === 'postgres' ? '42703' : 'SQLITE_ERROR');
    const counted = pagingReader({ db, select, key: 'id', countTotal: true });
    await expect(Promise.resolve(counted.open?.({}))).rejects.toThrow(/^pagingReader \(countTotal\): .* in: SELECT id, nope FROM src$/);
    const cursor = cursorReader({ db, select });
    await expect(Promise.resolve(cursor.open?.({}))).rejects.toThrow(/^cursorReader: .* in: SELECT id, nope FROM src$/);
    await cursor.close?.();
    await db.close();
  });

  it('a writer hitting a unique violation names its table and the duplicate key', async () => {
    const db = await openDatabase(backend.freshUrl('sqldup'));
    await db.exec('CREATE TABLE dst (id INTEGER PRIMARY KEY, b TEXT)');
    const chunk = (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) => ({ tx, context: {}, jobExecutionId: 1, stepExecutionId: 1 });
    await db.transaction(async (tx) => sqlWriter<number>({ table: 'dst', columns: ['id', 'b'], values: (n) => [n, `b${n}`] }).write([1, 2], chunk(tx)));
    for (const copy of backend.name === 'postgres' ? [false, true] : [false]) {
      const writer = sqlWriter<number>({ table: 'dst', columns: ['id', 'b'], values: (n) => [n, `b${n}`], copy });
      const error = await failure(db.transaction(async (tx) => writer.write([3, 2], chunk(tx))));
      expect(error.message).toMatch(copy ? /^sqlWriter COPY into dst: / : /^sqlWriter INSERT into dst: /);
      if (backend.name === 'postgres') {
        expect(error.message).toMatch(/duplicate key value violates unique constraint "dst_pkey" \(Key \(id\)=\(2\) already exists\.\)/);
        expect(error.code).toBe('23505');
      } else {
        expect(error.message).toMatch(/UNIQUE constraint failed: dst\.id/);
        expect(error.code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
      }
    }
    await db.close();
  });

  it("a writer names only the database's errors: the user's own pass as thrown, a failing row's values stay out", async () => {
    const db = await openDatabase(backend.freshUrl('sqlown'));
    await db.exec('CREATE TABLE dst (id INTEGER PRIMARY KEY, secret TEXT NOT NULL)');
    const chunk = (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) => ({ tx, context: {}, jobExecutionId: 1, stepExecutionId: 1 });
    const own = Object.freeze(new Error('bad amount on item 2'));
    const mine = sqlWriter<number>({ table: 'dst', columns: ['id', 'secret'], values: (n) => { if (n === 2) throw own; return [n, 's']; } });
    expect(await failure(db.transaction(async (tx) => mine.write([1, 2], chunk(tx))))).toBe(own);
    expect(own.message).toBe('bad amount on item 2');
    const nulls = sqlWriter<number>({ table: 'dst', columns: ['id', 'secret'], values: (n) => [n, n === 2 ? null : 'hunter2'] });
    const error = await failure(db.transaction(async (tx) => nulls.write([1, 2], chunk(tx))));
    expect(error.message).toMatch(/^sqlWriter INSERT into dst: .*(null value in column "secret"|NOT NULL constraint failed: dst\.secret)/);
    expect(error.message).not.toContain('hunter2');
    await db.close();
  });

  it('rejects table and column names that are not plain identifiers', () => {
    expect(() => sqlWriter({ table: 'dst; DROP TABLE x', columns: ['a'], values: () => [] })).toThrow(/not a plain SQL identifier/);
  });
});

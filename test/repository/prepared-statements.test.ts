import { afterAll, describe, expect, it } from 'vitest';
import type { ChunkContext } from '../../src/core/items.ts';
import { sqlWriter } from '../../src/items/sql-writer.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { keepPrepared, preparedName } from '../../src/repository/prepared.ts';
import type { Database } from '../../src/repository/database.ts';
import { backends } from '../support/backends.ts';
import { itWhen } from '../support/skip.ts';

/** Writes `items` with `writer` in one transaction of `db`, as a chunk would. */
const writeChunk = (db: Database, writer: ReturnType<typeof sqlWriter<number>>, items: number[]) =>
  db.transaction(async (tx) => {
    await writer.write(items, { tx, context: {}, jobExecutionId: 7, stepExecutionId: 1 } satisfies ChunkContext);
  });

const ids = async (db: Database, table: string) =>
  (await db.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).map((r) => Number(r.id));

describe.each(backends())('statements kept prepared ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('a recurring chunk insert survives a failed chunk and its table being recreated', async () => {
    // One pooled connection: every chunk reuses the statement prepared on it.
    const db = await openDatabase(backend.freshUrl('prepared'), { poolSize: 1 });
    await db.exec('CREATE TABLE kept (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)');
    const writer = sqlWriter<number>({ table: 'kept', columns: ['id', 'tag'], values: (id) => [id, `t${id}`] });
    await writeChunk(db, writer, [1, 2, 3]);
    await writeChunk(db, writer, [4, 5, 6]);
    // A duplicate key fails the whole chunk; nothing of it stays.
    await expect(writeChunk(db, writer, [7, 8, 1])).rejects.toThrow(/unique|UNIQUE/);
    await writeChunk(db, writer, [7, 8, 9]);
    expect(await ids(db, 'kept')).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // Another process recreates the table with its columns in another order and one more.
    await db.exec('DROP TABLE kept');
    await db.exec(`CREATE TABLE kept (note TEXT DEFAULT 'n', tag TEXT NOT NULL, id INTEGER PRIMARY KEY)`);
    await writeChunk(db, writer, [10, 11, 12]);
    await writeChunk(db, writer, [13]);
    expect(await db.query(`SELECT id, tag, note FROM kept ORDER BY id`)).toEqual(
      [10, 11, 12, 13].map((id) => ({ id, tag: `t${id}`, note: 'n' })),
    );
    await db.close();
  });

  itWhen(backend.name === 'postgres', 'PostgreSQL only: prepared statements')('PostgreSQL keeps a full chunk\'s insert prepared, not a one-off shorter one nor a large one', async () => {
    const db = await openDatabase(backend.freshUrl('prepared'), { poolSize: 1 });
    await db.exec('CREATE TABLE shapes (id INTEGER PRIMARY KEY)');
    const writer = sqlWriter<number>({ table: 'shapes', columns: ['id'], values: (id) => [id] });
    for (let c = 0; c < 3; c++) await writeChunk(db, writer, [c * 4 + 1, c * 4 + 2, c * 4 + 3, c * 4 + 4]);
    await writeChunk(db, writer, [13, 14]);
    // Large chunks recur too, but their statements would hold megabytes on every connection.
    const large = (from: number) => Array.from({ length: 6001 }, (_, i) => from + i);
    await writeChunk(db, writer, large(101));
    await writeChunk(db, writer, large(10_101));
    const prepared = (await db.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements'))
      .map((r) => r.statement)
      .filter((s) => s.startsWith('INSERT INTO shapes'));
    expect(prepared).toEqual(['INSERT INTO shapes (id) VALUES ($1),($2),($3),($4) ']);
    expect(await ids(db, 'shapes')).toEqual([...Array.from({ length: 14 }, (_, i) => i + 1), ...large(101), ...large(10_101)]);
    await db.close();
  });

  itWhen(backend.name === 'postgres', 'PostgreSQL only: prepared statements')('PostgreSQL with ?prepare=false runs every statement unnamed', async () => {
    const db = await openDatabase(`${backend.freshUrl('unprepared')}&prepare=false`, { poolSize: 1 });
    await db.exec('CREATE TABLE shapes (id INTEGER PRIMARY KEY)');
    const writer = sqlWriter<number>({ table: 'shapes', columns: ['id'], values: (id) => [id] });
    for (let c = 0; c < 3; c++) await writeChunk(db, writer, [c * 2 + 1, c * 2 + 2]);
    expect(await db.query('SELECT statement FROM pg_prepared_statements')).toEqual([]);
    expect(await ids(db, 'shapes')).toEqual([1, 2, 3, 4, 5, 6]);
    await db.close();
    await expect(openDatabase(`${backend.freshUrl('unprepared')}&prepare=maybe`)).rejects.toThrow(
      'invalid database URL: prepare="maybe" must be true or false',
    );
  });
});

describe.each(backends())('a transaction ending with a kept-prepared statement ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  type Row = { id: number; note: string | null; amount: number | null };
  const numeric = (rows: Row[]) => rows.map((r) => ({ ...r, id: Number(r.id), amount: r.amount === null ? null : Number(r.amount) }));
  // From the second transaction on a connection, PostgreSQL sends the statement with its COMMIT
  // and its parameters as literals: quotes, backslashes and non-ASCII must arrive intact.
  const awkward = `it's a \\ "quoted" \\' value: é 😀 \n`;

  it('commits the work and the last statement together, whatever the parameters', async () => {
    const db = await openDatabase(backend.freshUrl('ending'), { poolSize: 1 });
    await db.exec('CREATE TABLE ending (id INTEGER PRIMARY KEY, note TEXT, amount DOUBLE PRECISION)');
    const last = keepPrepared('INSERT INTO ending (id, note, amount) VALUES ($1, $2, $3) RETURNING id, note, amount');
    const cases: Row[] = [
      { id: 1, note: awkward, amount: 2 },
      { id: 2, note: awkward, amount: 2.5 }, // not an integer: sent as a parameter, not a literal
      { id: 3, note: awkward, amount: -7 },
      { id: 4, note: null, amount: null },
      { id: 5, note: '', amount: 0 },
    ];
    const returned: Row[] = [];
    for (const c of cases) {
      const { value, rows } = await db.transactionEndingWith<string, Row>(async (tx) => {
        await tx.execute('INSERT INTO ending (id, note) VALUES ($1, $2)', [c.id + 100, 'work']);
        return { value: `chunk ${c.id}`, last: { sql: last, params: [c.id, c.note, c.amount] } };
      });
      expect(value).toBe(`chunk ${c.id}`);
      returned.push(...rows);
    }
    expect(numeric(returned)).toEqual(cases);
    const work = cases.map((c) => ({ id: c.id + 100, note: 'work', amount: null }));
    expect(numeric(await db.query<Row>('SELECT id, note, amount FROM ending ORDER BY id'))).toEqual([...cases, ...work]);
    await db.close();
  });

  it('a last statement without parameters commits with its transaction too, once it is parsed', async () => {
    const db = await openDatabase(backend.freshUrl('noparams'), { poolSize: 1 });
    await db.exec('CREATE TABLE ending (id INTEGER PRIMARY KEY, note TEXT)');
    const last = keepPrepared(`UPDATE ending SET note = 'last' WHERE note = 'work' RETURNING id`);
    for (const id of [1, 2, 3]) {
      const { rows } = await db.transactionEndingWith<undefined, { id: number }>(async (tx) => {
        await tx.execute('INSERT INTO ending (id, note) VALUES ($1, $2)', [id, 'work']);
        return { value: undefined, last: { sql: last, params: [] } };
      });
      expect(rows.map((r) => Number(r.id))).toEqual([id]);
    }
    expect(await db.query('SELECT id, note FROM ending ORDER BY id')).toEqual([1, 2, 3].map((id) => ({ id, note: 'last' })));
    await db.close();
  });

  it('commits nothing when the last statement fails', async () => {
    const db = await openDatabase(backend.freshUrl('ending'), { poolSize: 1 });
    await db.exec('CREATE TABLE ending (id INTEGER PRIMARY KEY, note TEXT)');
    const last = keepPrepared('INSERT INTO ending (id, note) VALUES ($1, $2)');
    const attempt = (id: number, lastId: number) =>
      db.transactionEndingWith(async (tx) => {
        await tx.execute('INSERT INTO ending (id, note) VALUES ($1, $2)', [id, 'work']);
        return { value: id, last: { sql: last, params: [lastId, 'last'] } };
      });
    await attempt(1, 2);
    await attempt(3, 4); // by now the statement is parsed on the connection
    // The last statement hits a duplicate key: the work before it rolls back too.
    await expect(attempt(5, 2)).rejects.toThrow(/unique|UNIQUE/);
    await expect(attempt(6, 6)).rejects.toThrow(/unique|UNIQUE/);
    await attempt(7, 8);
    expect((await db.query<{ id: number }>('SELECT id FROM ending ORDER BY id')).map((r) => Number(r.id))).toEqual([1, 2, 3, 4, 7, 8]);
    await db.close();
  });
});

// Last in the file: it fills the process-wide cap.
describe('the cap on statements kept prepared (PostgreSQL)', () => {
  const pg = backends().find((b) => b.name === 'postgres')!;
  afterAll(() => pg.cleanup());

  it('past the cap a statement is no longer named, and still runs', async () => {
    const db = await openDatabase(pg.freshUrl('prepared'), { poolSize: 1 });
    const texts = Array.from({ length: 300 }, (_, i) => keepPrepared(`SELECT ${i} + $1 AS n`));
    const named = texts.filter((t) => preparedName(t) !== undefined);
    expect(named.length).toBeGreaterThan(0);
    expect(named.length).toBeLessThanOrEqual(128);
    expect(new Set(named.map(preparedName)).size).toBe(named.length);
    const last = texts[texts.length - 1];
    expect(preparedName(last)).toBeUndefined();
    expect(await db.query(last, [1])).toEqual([{ n: 300 }]);
    expect(await db.query(named[0], [1])).toEqual([{ n: Number(named[0].split(' ')[1]) + 1 }]);
    await db.close();
  });
});

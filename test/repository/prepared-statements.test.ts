import { afterAll, describe, expect, it } from 'vitest';
import type { ChunkContext } from '../../src/core/items.ts';
import { sqlWriter } from '../../src/items/sql-writer.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { keepPrepared, preparedName } from '../../src/repository/prepared.ts';
import type { Database } from '../../src/repository/database.ts';
import { backends } from '../support/backends.ts';

/** Writes `items` with `writer` in one transaction of `db`, as a chunk would. */
const writeChunk = (db: Database, writer: ReturnType<typeof sqlWriter<number>>, items: number[]) =>
  db.transaction(async (tx) => {
    await writer.write(items, { tx, context: {}, jobExecutionId: 7, stepExecutionId: 1 } satisfies ChunkContext);
  });

const ids = async (db: Database, table: string) =>
  (await db.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).map((r) => Number(r.id));

describe.each(backends())('statements kept prepared, on %s', (backend) => {
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

  it.runIf(backend.name === 'postgres')('PostgreSQL keeps a full chunk\'s insert prepared, not a one-off shorter one', async () => {
    const db = await openDatabase(backend.freshUrl('prepared'), { poolSize: 1 });
    await db.exec('CREATE TABLE shapes (id INTEGER PRIMARY KEY)');
    const writer = sqlWriter<number>({ table: 'shapes', columns: ['id'], values: (id) => [id] });
    for (let c = 0; c < 3; c++) await writeChunk(db, writer, [c * 4 + 1, c * 4 + 2, c * 4 + 3, c * 4 + 4]);
    await writeChunk(db, writer, [13, 14]);
    const prepared = (await db.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements'))
      .map((r) => r.statement)
      .filter((s) => s.startsWith('INSERT INTO shapes'));
    expect(prepared).toEqual(['INSERT INTO shapes (id) VALUES ($1),($2),($3),($4) ']);
    expect(await ids(db, 'shapes')).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
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

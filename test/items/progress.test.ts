/**
 * What each reader reports as its progress (ItemStreamReader.progress): the range's count, the
 * file readers' bytes (the file's size as the total), the SQL readers' row count when asked.
 * Each across a restart: done goes on from the saved position, never back to 0.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { ItemStreamReader } from '../../src/core/items.ts';
import type { ExecutionContext } from '../../src/core/model.ts';
import { csvReader } from '../../src/items/csv-reader.ts';
import { fixedWidthReader } from '../../src/items/fixed-width-reader.ts';
import { jsonlReader } from '../../src/items/jsonl-reader.ts';
import { rangeReader } from '../../src/items/range-reader.ts';
import { cursorReader, pagingReader } from '../../src/items/sql-reader.ts';
import { insertRows } from '../../src/items/sql-writer.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { backends } from '../support/backends.ts';
import { tempFile } from './helpers.ts';

async function take<T>(reader: ItemStreamReader<T>, n = Infinity): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const v = await reader.read();
    if (v === undefined) break;
    out.push(v);
  }
  return out;
}

/** Saves the reader's position as a commit would (through JSON, as the repository stores it). */
function saved(reader: ItemStreamReader<unknown>): ExecutionContext {
  const ctx: ExecutionContext = {};
  reader.update?.(ctx);
  return JSON.parse(JSON.stringify(ctx)) as ExecutionContext;
}

describe('reader progress', () => {
  it('rangeReader: the numbers read of the range, across a restart', async () => {
    const first = rangeReader(11, 60);
    first.open?.({});
    expect(first.progress?.()).toEqual({ unit: 'items', done: 0, total: 50 });
    await take(first, 20);
    const ctx = saved(first);
    expect(first.progress?.()).toEqual({ unit: 'items', done: 20, total: 50 });
    await take(first, 5); // read, not committed
    const second = rangeReader(11, 60);
    second.open?.(ctx);
    expect(second.progress?.()).toEqual({ unit: 'items', done: 20, total: 50 });
    expect(await take(second)).toHaveLength(30);
    expect(second.progress?.()).toEqual({ unit: 'items', done: 50, total: 50 });
    // An empty range.
    const empty = rangeReader(5, 4);
    expect(empty.progress?.()).toEqual({ unit: 'items', done: 0, total: 0 });
  });

  const lines = Array.from({ length: 40 }, (_, i) => i + 1);
  const files = [
    {
      kind: 'csvReader',
      content: 'id,name\n' + lines.map((i) => `${i},name ${i}`).join('\n') + '\n\n',
      make: (path: string) => csvReader({ path, chunkSize: 64 }),
    },
    {
      kind: 'fixedWidthReader',
      content: lines.map((i) => String(i).padStart(6) + 'x'.repeat(10)).join('\r\n') + '\r\n',
      make: (path: string) => fixedWidthReader({ path, chunkSize: 64, fields: [{ name: 'id', start: 0, length: 6 }] }),
    },
    {
      kind: 'jsonlReader',
      content: lines.map((i) => JSON.stringify({ id: i })).join('\n') + '\n   \n',
      make: (path: string) => jsonlReader({ path, chunkSize: 64 }),
    },
  ];

  it.each(files)('$kind: bytes of the file, the position as done, the size as total, across a restart', async ({ content, make }) => {
    const path = tempFile(content);
    const size = Buffer.byteLength(content);
    const first = make(path);
    await first.open({});
    const opened = first.progress();
    expect(opened).toMatchObject({ unit: 'bytes', total: size });
    expect(opened!.done).toBeLessThan(size);
    await take(first, 15);
    const ctx = saved(first);
    const at15 = first.progress()!;
    const done15 = at15.done!;
    // Done is exactly the position saved with the commit: the byte after the 15th record.
    expect(done15).toBe(Object.entries(ctx).find(([k]) => k.endsWith('.offset'))![1]);
    expect(done15).toBeGreaterThan(opened!.done!);
    await take(first, 5); // read, not committed
    expect(first.progress()!.done).toBeGreaterThan(done15);
    await first.close();

    const second = make(path);
    await second.open(ctx);
    expect(second.progress()).toEqual({ unit: 'bytes', done: done15, total: size });
    expect(await take(second)).toHaveLength(25);
    // The end of the file is reached (trailing blank lines included): all of it is done.
    expect(second.progress()).toEqual({ unit: 'bytes', done: size, total: size });
    await second.close();
  });
});

describe.each(backends())('SQL reader progress ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  const seeded = async (rows: number) => {
    const db = await openDatabase(backend.freshUrl('sqlprogress'));
    await db.exec('CREATE TABLE src (id INTEGER PRIMARY KEY, grp INTEGER)');
    await db.transaction((tx) => insertRows(tx, 'src', ['id', 'grp'], Array.from({ length: rows }, (_, i) => [i + 1, i % 3])));
    return db;
  };

  it('pagingReader with countTotal counts the query (with its parameters) once at open; without, no total', async () => {
    const db = await seeded(90);
    try {
      const options = { db, select: 'SELECT id FROM src WHERE grp <> $1', params: [0], key: 'id', pageSize: 7 };
      const counted = pagingReader({ ...options, countTotal: true });
      await counted.open?.({});
      // Items: the engine counts them, so the reader gives the total only.
      expect(counted.progress?.()).toEqual({ unit: 'items', total: 60 });
      await take(counted, 10);
      const ctx = saved(counted);
      const again = pagingReader({ ...options, countTotal: true });
      await again.open?.(ctx);
      expect(again.progress?.()).toEqual({ unit: 'items', total: 60 });
      expect(await take(again)).toHaveLength(50);

      const plain = pagingReader(options);
      await plain.open?.({});
      expect(plain.progress?.()).toEqual({ unit: 'items', total: undefined });
    } finally {
      await db.close();
    }
  });

  it('cursorReader with countTotal: rows read of the count, across a restart', async () => {
    const db = await seeded(75);
    try {
      const select = 'SELECT id FROM src WHERE id > $1 ORDER BY id';
      const first = cursorReader({ db, select, params: [5], fetchSize: 8, countTotal: true });
      await first.open?.({});
      expect(first.progress?.()).toEqual({ unit: 'items', done: 0, total: 70 });
      await take(first, 33);
      const ctx = saved(first);
      expect(first.progress?.()).toEqual({ unit: 'items', done: 33, total: 70 });
      await first.close?.();
      const second = cursorReader({ db, select, params: [5], fetchSize: 8, countTotal: true });
      await second.open?.(ctx);
      expect(second.progress?.()).toEqual({ unit: 'items', done: 33, total: 70 });
      expect(await take(second)).toHaveLength(37);
      expect(second.progress?.()).toEqual({ unit: 'items', done: 70, total: 70 });
      await second.close?.();
    } finally {
      await db.close();
    }
  });
});

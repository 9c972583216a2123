import fs from 'node:fs';
import { describe, it, expect } from 'vitest';
import { csvWriter, csvField, fileWriter, jsonlWriter } from '../../src/items/file-writer.ts';
import { csvReader } from '../../src/items/csv-reader.ts';
import { jsonlReader } from '../../src/items/jsonl-reader.ts';
import { UsageError } from '../../src/core/errors.ts';
import type { ExecutionContext } from '../../src/core/model.ts';
import type { ChunkContext } from '../../src/core/items.ts';
import { readAll, tempFile, tempPath } from './helpers.ts';

describe('fileWriter', () => {
  it('writes a header, one line per item and a footer', async () => {
    const path = tempPath();
    const writer = fileWriter<number>({ path, header: 'n', footer: () => 'end', format: (n) => `#${n}` });
    await writer.open({});
    await writer.write([1, 2]);
    await writer.write([]);
    await writer.write([3]);
    await writer.close();
    expect(fs.readFileSync(path, 'utf8')).toBe('n\n#1\n#2\n#3\nend\n');
  });

  it('truncates an existing file on a first run', async () => {
    const path = tempFile('old content\nold\n');
    const writer = fileWriter<string>({ path, format: (s) => s });
    await writer.open({});
    await writer.write(['new']);
    await writer.close();
    expect(fs.readFileSync(path, 'utf8')).toBe('new\n');
  });

  it('writes each item exactly once across a crash and restart', async () => {
    const path = tempPath();
    const make = () => fileWriter<string>({ path, header: 'HEAD', footer: 'FOOT', format: (s) => s });
    // Run 1: chunk 1 commits; chunk 2 is written, then the process dies before the commit.
    const first = make();
    await first.open({});
    await first.write(['a1', 'a2é']);
    const committed: ExecutionContext = {};
    first.update(committed);
    await first.afterCommit?.(committed);
    await first.write(['b1', 'b2']);
    const notCommitted: ExecutionContext = {};
    first.update(notCommitted); // the transaction carrying this context rolled back
    expect(fs.readFileSync(path, 'utf8')).toBe('HEAD\na1\na2é\nb1\nb2\n');
    // no close(): crashed

    // Run 2: restarts from chunk 1's context, re-processes chunk 2.
    const second = make();
    await second.open({ ...committed });
    expect(fs.readFileSync(path, 'utf8')).toBe('HEAD\na1\na2é\n');
    await second.write(['b1', 'b2']);
    await second.write(['c1']);
    await second.close();
    expect(fs.readFileSync(path, 'utf8')).toBe('HEAD\na1\na2é\nb1\nb2\nc1\nFOOT\n');
  });

  it('drops the bytes of a rolled-back attempt when the chunk is retried in a new transaction', async () => {
    const path = tempPath();
    const writer = fileWriter<string>({ path, format: (s) => s });
    const attempt = () => ({ context: {} }) as unknown as ChunkContext; // one object per transaction
    await writer.open({});
    await writer.write(['a'], attempt());
    writer.afterCommit?.({});
    await writer.write(['b'], attempt()); // this transaction rolls back: no afterCommit
    const retry = attempt();
    await writer.write(['b'], retry);
    await writer.write(['c'], retry); // the same transaction (item-by-item scan) keeps what it wrote
    writer.afterCommit?.({});
    await writer.close();
    expect(fs.readFileSync(path, 'utf8')).toBe('a\nb\nc\n');
  });

  it('removes a footer written by a failed run on restart', async () => {
    const path = tempPath();
    const make = () => fileWriter<string>({ path, footer: 'FOOT', format: (s) => s, fsync: true });
    const first = make();
    await first.open({});
    await first.write(['a']);
    const context: ExecutionContext = {};
    first.update(context);
    await first.write(['b']);
    await first.close(); // the step failed after chunk 2 was written but not committed
    expect(fs.readFileSync(path, 'utf8')).toBe('a\nb\nFOOT\n');
    const second = make();
    await second.open(context);
    await second.write(['b']);
    await second.close();
    expect(fs.readFileSync(path, 'utf8')).toBe('a\nb\nFOOT\n');
  });

  it('keeps the offsets of several writers apart', async () => {
    const a = fileWriter<string>({ path: tempPath('a.txt'), format: (s) => s });
    const b = fileWriter<string>({ path: tempPath('b.txt'), format: (s) => s });
    await a.open({});
    await b.open({});
    await a.write(['xx']);
    const context: ExecutionContext = {};
    a.update(context);
    b.update(context);
    expect(context).toEqual({ [a.name]: 3, [b.name]: 0 });
    await a.close();
    await b.close();
  });

  it('refuses to restart when the file is missing or shorter than the committed offset', async () => {
    const path = tempPath();
    const writer = fileWriter<string>({ path, format: (s) => s });
    const context = { [writer.name]: 10 };
    await expect(writer.open(context)).rejects.toThrow(new UsageError(`cannot restart writing ${path}: the file is missing`));
    fs.writeFileSync(path, 'abc');
    await expect(writer.open(context)).rejects.toThrow(/cannot restart writing .* at byte 10: the file has only 3 bytes/);
    await expect(fileWriter({ path: tempPath('no/such/dir.txt'), format: String }).open({})).rejects.toThrow(UsageError);
  });
});

describe('csvWriter', () => {
  it('quotes fields that need it, and reads back through csvReader', async () => {
    type Row = { id: number; text: string | null; when?: Date };
    const path = tempPath('out.csv');
    const rows: Row[] = [
      { id: 1, text: 'plain' },
      { id: 2, text: 'comma, "quotes"\nand newline\r\n' },
      { id: 3, text: null, when: new Date('2024-01-02T03:04:05Z') },
    ];
    const writer = csvWriter<Row>({ path, columns: ['id', 'text', { header: 'when, UTC', value: (r) => r.when }] });
    await writer.open({});
    await writer.write(rows);
    await writer.close();
    expect(fs.readFileSync(path, 'utf8')).toBe(
      'id,text,"when, UTC"\n1,plain,\n2,"comma, ""quotes""\nand newline\r\n",\n3,,2024-01-02T03:04:05.000Z\n',
    );
    expect(await readAll(() => csvReader({ path }))).toEqual([
      { id: '1', text: 'plain', 'when, UTC': '' },
      { id: '2', text: 'comma, "quotes"\nand newline\r\n', 'when, UTC': '' },
      { id: '3', text: '', 'when, UTC': '2024-01-02T03:04:05.000Z' },
    ]);
  });

  it('formats single fields', () => {
    expect(csvField('a;b', ';')).toBe('"a;b"');
    expect(csvField('a,b', ';')).toBe('a,b');
    expect(csvField(12.5)).toBe('12.5');
    expect(csvField({ x: 1 })).toBe('"{""x"":1}"');
    expect(csvField('x', ',', '"', true)).toBe('"x"');
  });
});

describe('jsonlWriter', () => {
  it('writes one JSON value per line, which jsonlReader reads back', async () => {
    const path = tempPath('out.jsonl');
    const items = [{ a: 1, s: 'line\nbreak' }, { a: 2, s: '\u2028' }];
    const writer = jsonlWriter<(typeof items)[number]>({ path });
    await writer.open({});
    await writer.write(items);
    await writer.close();
    expect(fs.readFileSync(path, 'utf8').split('\n')).toHaveLength(3);
    expect(await readAll(() => jsonlReader({ path }))).toEqual(items);
  });
});

import fs from 'node:fs';
import { describe, it, expect } from 'vitest';
import { csvReader, type CsvReaderOptions } from '../../src/items/csv-reader.ts';
import { UnreadableFileError } from '../../src/items/record-source.ts';
import { ItemParseError, UsageError } from '../../src/core/errors.ts';
import { checkRestartEverywhere, readAll, readError, take, tempFile } from './helpers.ts';

const csv = <T = Record<string, string>>(options: CsvReaderOptions<T>) => () => csvReader<T>(options);

describe('csvReader', () => {
  it('maps records by the header and reports line numbers', async () => {
    const path = tempFile('id,name\n1,Ann\n2,Bob\n');
    const lines: number[] = [];
    const items = await readAll(csv({ path, map: (r, line) => (lines.push(line), { id: Number(r.id), name: r.name }) }));
    expect(items).toEqual([{ id: 1, name: 'Ann' }, { id: 2, name: 'Bob' }]);
    expect(lines).toEqual([2, 3]);
  });

  it('returns buffered records synchronously, and exposes lastLine', async () => {
    const path = tempFile('a\nx\ny\nz\n');
    const reader = csvReader({ path });
    await reader.open({});
    const first = reader.read();
    expect(first).toBeInstanceOf(Promise); // the first chunk must be read
    expect(await first).toEqual({ a: 'x' });
    expect(reader.lastLine).toBe(2);
    expect(reader.read()).toEqual({ a: 'y' }); // buffered: a plain value
    expect(reader.lastLine).toBe(3);
    expect(await reader.read()).toEqual({ a: 'z' }); // the last record of a chunk may wait for the next
    expect(await reader.read()).toBeUndefined();
    await reader.close();
  });

  it('parses quoted fields with delimiters, newlines and quotes, and numbers lines from the record start', async () => {
    const path = tempFile('id,text\r\n1,"a, b"\r\n2,"two\r\nlines ""quoted"""\r\n\r\n3,plain\r\n4,"x\n\ny"\n5,end');
    const lines: number[] = [];
    const items = await readAll(csv({ path, map: (r, line) => (lines.push(line), r) }));
    expect(items).toEqual([
      { id: '1', text: 'a, b' },
      { id: '2', text: 'two\r\nlines "quoted"' },
      { id: '3', text: 'plain' },
      { id: '4', text: 'x\n\ny' },
      { id: '5', text: 'end' },
    ]);
    expect(lines).toEqual([2, 3, 6, 7, 10]);
  });

  it('supports a custom delimiter and quote, and strips a BOM', async () => {
    const path = tempFile('\ufeffa;b\n\'x;1\';2\n');
    expect(await readAll(csv({ path, delimiter: ';', quote: "'" }))).toEqual([{ a: 'x;1', b: '2' }]);
    const tsv = tempFile('a\tb\n1\t"2\t3"\n');
    expect(await readAll(csv({ path: tsv, delimiter: '\t' }))).toEqual([{ a: '1', b: '2\t3' }]);
  });

  it('trims white space outside quotes with trim, Unicode spaces too; keeps it without', async () => {
    const path = tempFile('a,b,c\n x ,\u00a0y\t," z "\n');
    expect(await readAll(csv({ path, trim: true }))).toEqual([{ a: 'x', b: 'y', c: ' z ' }]);
    expect(await readAll(csv({ path }))).toEqual([{ a: ' x ', b: '\u00a0y\t', c: ' z ' }]);
  });

  it('uses explicit column names, with or without a header line', async () => {
    const noHeader = tempFile('1,Ann\n2,Bob\n');
    expect(await readAll(csv({ path: noHeader, columns: ['id', 'name'] }))).toEqual([
      { id: '1', name: 'Ann' },
      { id: '2', name: 'Bob' },
    ]);
    const withHeader = tempFile('ID,NAME\n1,Ann\n');
    expect(await readAll(csv({ path: withHeader, header: true, columns: ['id', 'name'] }))).toEqual([{ id: '1', name: 'Ann' }]);
    expect(() => csvReader({ path: noHeader, header: false })).toThrow(UsageError);
    expect(() => csvReader({ path: noHeader, delimiter: '' })).toThrow(UsageError);
  });

  it('checks the expected header', async () => {
    const path = tempFile('id,nom\n1,x\n');
    expect(await readAll(csv({ path, expectHeader: ['id', 'nom'] }))).toHaveLength(1);
    const reader = csvReader({ path, expectHeader: ['id', 'name'] });
    const err = await reader.open({}).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err!.message).toContain(path);
    expect(err!.message).toContain('["id","name"]');
    expect(err!.message).toContain('["id","nom"]');
  });

  it('restarts exactly after the last committed record, re-reading only the header', async () => {
    const path = tempFile('id,text\n1,"multi\nline"\n2,"a ""b"", c"\n\n3,x\r\n4,"y\r\n\r\nz"\n5,w\n6,last');
    const withLine = (r: Record<string, string>, line: number) => ({ ...r, line });
    for (const chunkSize of [16, 17, 64 * 1024]) {
      expect(await checkRestartEverywhere(csv({ path, chunkSize, map: withLine }))).toBe(6);
    }
    for (const chunkSize of [16, 64 * 1024]) {
      expect((await readAll(csv({ path, chunkSize, map: withLine }))).map((r) => r.line)).toEqual([2, 4, 6, 7, 10, 11]);
    }
  });

  it('numbers lines right in generated files with mixed line ends inside and between records', async () => {
    let seed = 42;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const pieces = ['a', 'b c', ',', '""', '\n', '\r\n', 'é', '日本'];
    const field = () => {
      const text = Array.from({ length: random(4) }, () => pieces[random(pieces.length)]).join('');
      return /[,"\r\n]/.test(text) ? text : text.replace(/""/g, '');
    };
    let content = 'id,x,y\n';
    const expected: { id: string; line: number }[] = [];
    for (let id = 0; id < 60; id++) {
      if (random(5) === 0) content += random(2) ? '\n' : '\r\n'; // an empty line
      expected.push({ id: String(id), line: content.split('\n').length });
      const quote = (f: string) => (/[,"\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f);
      content += [String(id), quote(field()), quote(field())].join(',') + (random(2) ? '\n' : '\r\n');
    }
    const path = tempFile(content);
    const idLine = (r: Record<string, string>, line: number) => ({ id: r.id, line });
    for (const chunkSize of [16, 31, 64 * 1024]) {
      expect(await readAll(csv({ path, chunkSize, map: idLine }))).toEqual(expected);
    }
    expect(await checkRestartEverywhere(csv({ path, chunkSize: 16, map: (r, line) => ({ ...r, line }) }))).toBe(60);
  });

  it('continues at item N+1 after a restart, with line numbers', async () => {
    const path = tempFile('id,text\n1,"multi\nline"\n2,b\n3,"c\nc"\n4,d\n5,e\n');
    const reader = csvReader({ path, chunkSize: 16 });
    await reader.open({});
    expect((await take(reader, 2)).map((r) => r.id)).toEqual(['1', '2']);
    const context = {};
    reader.update(context);
    expect((await take(reader, 2)).map((r) => r.id)).toEqual(['3', '4']);
    await reader.close();

    const restarted = csvReader({ path, chunkSize: 16 });
    await restarted.open(context);
    expect(await restarted.read()).toEqual({ id: '3', text: 'c\nc' });
    expect(restarted.lastLine).toBe(5);
    expect((await take(restarted)).map((r) => r.id)).toEqual(['4', '5']);
    expect(restarted.lastLine).toBe(8);
    await restarted.close();
  });

  it('rejects a record with the wrong field count, recoverably', async () => {
    const path = tempFile('a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n');
    const reader = csvReader({ path });
    await reader.open({});
    expect(await reader.read()).toEqual({ a: '1', b: '2', c: '3' });
    const err = await readError(reader);
    expect(err).toBeInstanceOf(ItemParseError);
    expect(err.message).toBe(`${path}, line 3: expected 3 fields, found 2`);
    expect(err).toMatchObject({ file: path, line: 3, raw: '4,5' });
    expect(reader.lastLine).toBe(3);
    const context = {};
    reader.update(context); // committed after the skipped record
    const err2 = await readError(reader);
    expect(err2).toMatchObject({ line: 4, raw: '6,7,8,9' });
    expect(await reader.read()).toEqual({ a: '10', b: '11', c: '12' });
    expect(await reader.read()).toBeUndefined();
    await reader.close();

    const restarted = csvReader({ path });
    await restarted.open(context);
    expect(await readError(restarted)).toMatchObject({ line: 4 });
    expect(await restarted.read()).toEqual({ a: '10', b: '11', c: '12' });
    await restarted.close();
  });

  it('fails on an unterminated quote, after the records before it, naming the line', async () => {
    const path = tempFile('a,b\n1,2\n3,"open\n4,5\n6,7\n');
    const reader = csvReader({ path });
    await reader.open({});
    expect(await reader.read()).toEqual({ a: '1', b: '2' });
    const err = await readError(reader);
    expect(err).toBeInstanceOf(UnreadableFileError);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).not.toBeInstanceOf(ItemParseError);
    expect(err.message).toBe(`${path}, line 3: unterminated quoted field: the file ends inside it`);
    expect(err.line).toBe(3);
    await expect(async () => reader.read()).rejects.toThrow(UnreadableFileError); // stays failed
    await reader.close();
  });

  it('fails on a malformed quote unless relaxQuotes', async () => {
    const path = tempFile('a,b\n1,2\n3,x"y\n');
    const reader = csvReader({ path });
    await reader.open({});
    await take(reader, 1);
    const err = await readError(reader);
    expect(err).toBeInstanceOf(UnreadableFileError);
    expect(err.message).toContain(`${path}, line 3:`);
    expect(await readAll(csv({ path, relaxQuotes: true }))).toEqual([{ a: '1', b: '2' }, { a: '3', b: 'x"y' }]);
  });

  it('fails on a record over maxRecordSize (an unterminated quote in a big file)', async () => {
    const path = tempFile('a,b\n1,2\n3,"' + 'x,y\n'.repeat(1000));
    const reader = csvReader({ path, maxRecordSize: 1000, chunkSize: 256 });
    await reader.open({});
    await take(reader, 1);
    const err = await readError(reader);
    expect(err).toBeInstanceOf(UnreadableFileError);
    expect(err.message).toContain(`${path}, line 3: record longer than maxRecordSize`);
    // A long line without quotes, too.
    const long = tempFile('a,b\n1,2\n\n' + 'x'.repeat(2000) + ',y\n4,5\n');
    const longReader = csvReader({ path: long, maxRecordSize: 1000, chunkSize: 256 });
    await longReader.open({});
    await take(longReader, 1);
    expect((await readError(longReader)).message).toBe(`${long}, line 4: record longer than maxRecordSize (1000 bytes); unterminated quote?`);
    expect(await readAll(csv({ path: long, maxRecordSize: 0, chunkSize: 256 }))).toHaveLength(3);
  });

  it('rejects a record with invalid UTF-8, recoverably, and accepts multi-byte text split across chunks', async () => {
    const content = Buffer.concat([
      Buffer.from('name,city\nZoë,Kraków\n'),
      Buffer.from('bad,caf'),
      Buffer.from([0xe9, 0x2c]), // latin-1 é then ','
      Buffer.from('x\n日本語,東京 🗼\n'),
    ]);
    const path = tempFile(content);
    for (const chunkSize of [16, 17, 18, 19, 64 * 1024]) {
      const reader = csvReader({ path, chunkSize });
      await reader.open({});
      expect(await reader.read()).toEqual({ name: 'Zoë', city: 'Kraków' });
      const err = await readError(reader);
      expect(err).toBeInstanceOf(ItemParseError);
      expect(err.message).toBe(`${path}, line 3: invalid UTF-8 byte sequence`);
      expect(err.raw).toBe('bad,caf\ufffd,x');
      expect(await reader.read()).toEqual({ name: '日本語', city: '東京 🗼' });
      expect(await reader.read()).toBeUndefined();
      await reader.close();
    }
  });

  it('reports an empty file when a header is expected', async () => {
    const path = tempFile('');
    const err = await csvReader({ path }).open({}).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err!.message).toBe(`file ${path} is empty: expected a header line`);
    expect(await readAll(csv({ path, columns: ['a'] }))).toEqual([]);
    expect(await readAll(csv({ path: tempFile('a,b\n') }))).toEqual([]);
  });

  it('reports a missing or unreadable file', async () => {
    const path = tempFile('a\n1\n') + '.missing';
    const err = await csvReader({ path }).open({}).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err!.message).toBe(`input file ${path} does not exist`);
    const dir = tempFile('a\n').replace(/[/\\][^/\\]+$/, '');
    await expect(csvReader({ path: dir }).open({})).rejects.toThrow(`input file ${dir} is not a regular file`);
  });

  it('refuses a restart position past the end of the file', async () => {
    const path = tempFile('a\n1\n2\n');
    const reader = csvReader({ path });
    await reader.open({});
    await take(reader);
    const context = {};
    reader.update(context);
    await reader.close();
    fs.writeFileSync(path, 'a\n');
    await expect(csvReader({ path }).open(context)).rejects.toThrow(/cannot restart reading .* at byte 6: the file has only 2 bytes/);
  });
});

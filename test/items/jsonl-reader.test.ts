import { describe, it, expect } from 'vitest';
import { jsonlReader } from '../../src/items/jsonl-reader.ts';
import { UnreadableFileError } from '../../src/items/record-source.ts';
import { ItemParseError, UsageError } from '../../src/core/errors.ts';
import { checkRestartEverywhere, readAll, readError, take, tempFile } from './helpers.ts';

describe('jsonlReader', () => {
  it('reads one JSON value per line, skipping blank lines, with line numbers', async () => {
    const path = tempFile('{"a":1}\n\n  \r\n{"a":"two\\nlines"}\r\n[1,2]\n"last"');
    const lines: number[] = [];
    expect(await readAll(() => jsonlReader({ path, map: (v, line) => (lines.push(line), v) }))).toEqual([{ a: 1 }, { a: 'two\nlines' }, [1, 2], 'last']);
    expect(lines).toEqual([1, 4, 5, 6]);
  });

  it('drops a byte order mark', async () => {
    expect(await readAll(() => jsonlReader({ path: tempFile('\ufeff{"a":1}\n{"a":2}\n') }))).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('rejects a line with bad JSON, recoverably, naming the file and line', async () => {
    const path = tempFile('{"a":1}\n{"a":\n{"a":3}\n');
    const reader = jsonlReader({ path });
    await reader.open({});
    expect(await reader.read()).toEqual({ a: 1 });
    const err = await readError(reader);
    expect(err).toBeInstanceOf(ItemParseError);
    expect(err.message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, line 2: invalid JSON: `));
    expect(err).toMatchObject({ file: path, line: 2, raw: '{"a":' });
    expect(reader.lastLine).toBe(2);
    expect(await reader.read()).toEqual({ a: 3 });
    expect(await reader.read()).toBeUndefined();
    await reader.close();
  });

  it('rejects a line with invalid UTF-8, recoverably', async () => {
    const path = tempFile(Buffer.concat([Buffer.from('{"a":"é"}\n{"a":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}\n{"a":"€"}\n')]));
    for (const chunkSize of [16, 17, 64 * 1024]) {
      const reader = jsonlReader({ path, chunkSize });
      await reader.open({});
      expect(await reader.read()).toEqual({ a: 'é' });
      const err = await readError(reader);
      expect(err).toBeInstanceOf(ItemParseError);
      expect(err.message).toBe(`${path}, line 2: invalid UTF-8 byte sequence`);
      expect(await reader.read()).toEqual({ a: '€' });
      await reader.close();
    }
  });

  it('restarts exactly after the last committed line', async () => {
    const path = tempFile(Array.from({ length: 12 }, (_, i) => (i % 5 === 4 ? '' : JSON.stringify({ i, s: 'é'.repeat(i) }))).join('\n'));
    for (const chunkSize of [16, 23, 64 * 1024]) {
      expect(await checkRestartEverywhere(() => jsonlReader({ path, chunkSize, map: (v, line) => ({ v, line }) }))).toBe(10);
    }
    const reader = jsonlReader({ path });
    await reader.open({});
    await take(reader, 3);
    const context = {};
    reader.update(context);
    await take(reader, 3);
    await reader.close();
    const restarted = jsonlReader({ path });
    await restarted.open(context);
    expect(await restarted.read()).toEqual({ i: 3, s: 'ééé' });
    expect(restarted.lastLine).toBe(4);
    await restarted.close();
  });

  it('fails on a line over maxLineLength', async () => {
    const path = tempFile('{"a":1}\n' + JSON.stringify({ big: 'x'.repeat(5000) }) + '\n');
    const reader = jsonlReader({ path, maxLineLength: 1000, chunkSize: 256 });
    await reader.open({});
    await take(reader, 1);
    const err = await readError(reader);
    expect(err).toBeInstanceOf(UnreadableFileError);
    expect(err.message).toBe(`${path}, line 2: line longer than maxLineLength (1000 bytes)`);
  });

  it('reads an empty file as no items, and reports a missing one', async () => {
    expect(await readAll(() => jsonlReader({ path: tempFile('') }))).toEqual([]);
    const path = tempFile('') + '.missing';
    await expect(jsonlReader({ path }).open({})).rejects.toThrow(UsageError);
  });
});

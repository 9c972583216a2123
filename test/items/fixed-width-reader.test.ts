import { describe, it, expect } from 'vitest';
import { fixedWidthReader, type FixedWidthReaderOptions } from '../../src/items/fixed-width-reader.ts';
import { ItemParseError, UsageError } from '../../src/core/errors.ts';
import { checkRestartEverywhere, readAll, readError, take, tempFile } from './helpers.ts';

const fields = [
  { name: 'id', start: 0, length: 3 },
  { name: 'name', from: 4, to: 10 },
  { name: 'amount', start: 10, length: 5 },
];
/** A line: id in 3 characters, name in 7, amount right-aligned in 5. */
const row = (id: string, name: string, amount: string) => id.padEnd(3) + name.padEnd(7) + amount.padStart(5);
const fw = <T = Record<string, string>>(options: FixedWidthReaderOptions<T>) => () => fixedWidthReader<T>(options);

describe('fixedWidthReader', () => {
  it('cuts lines into trimmed fields, with start/length and 1-based from/to', async () => {
    const path = tempFile(`${row('001', 'Ann', '12.50')}\r\n${row('002', 'Bob', '-3.00')}\n${row('003', 'Zoë', '100.0')}99\n`);
    const lines: number[] = [];
    expect(await readAll(fw({ path, fields, map: (r, line) => (lines.push(line), r) }))).toEqual([
      { id: '001', name: 'Ann', amount: '12.50' },
      { id: '002', name: 'Bob', amount: '-3.00' },
      { id: '003', name: 'Zoë', amount: '100.0' },
    ]);
    expect(lines).toEqual([1, 2, 3]);
    expect(await readAll(fw({ path, fields, trim: false }))).toContainEqual({ id: '001', name: 'Ann    ', amount: '12.50' });
  });

  it('skips header lines on a first run and blank lines', async () => {
    const path = tempFile(`ID NAME   AMOUNT\n\n${row('001', 'Ann', '12.50')}\n   \n${row('002', 'Bob', '-3.00')}`);
    const reader = fixedWidthReader({ path, fields, linesToSkip: 1 });
    await reader.open({});
    expect(await reader.read()).toEqual({ id: '001', name: 'Ann', amount: '12.50' });
    expect(reader.lastLine).toBe(3);
    expect(await reader.read()).toEqual({ id: '002', name: 'Bob', amount: '-3.00' });
    expect(reader.lastLine).toBe(5);
    expect(await reader.read()).toBeUndefined();
    await reader.close();
  });

  it('rejects a short line, recoverably, naming the file and line', async () => {
    const path = tempFile(`${row('001', 'Ann', '12.50')}\n002Bob\n${row('003', 'Cy', '1.000')}\n`);
    const reader = fixedWidthReader({ path, fields });
    await reader.open({});
    await take(reader, 1);
    const err = await readError(reader);
    expect(err).toBeInstanceOf(ItemParseError);
    expect(err.message).toBe(`${path}, line 2: line too short: 6 characters, the fields need 15`);
    expect(err).toMatchObject({ file: path, line: 2, raw: '002Bob' });
    expect(await reader.read()).toEqual({ id: '003', name: 'Cy', amount: '1.000' });
    await reader.close();
    expect(await readAll(fw({ path, fields, allowShortLines: true }))).toContainEqual({ id: '002', name: 'Bob', amount: '' });
  });

  it('rejects a line with invalid UTF-8, recoverably', async () => {
    const path = tempFile(Buffer.concat([Buffer.from(`${row('001', 'Ann', '12.50')}\n002B`), Buffer.from([0xc3, 0x28]), Buffer.from(`b    -3.00\n${row('003', 'Cy', '1.000')}\n`)]));
    const reader = fixedWidthReader({ path, fields, chunkSize: 16 });
    await reader.open({});
    await take(reader, 1);
    const err = await readError(reader);
    expect(err).toBeInstanceOf(ItemParseError);
    expect(err.message).toBe(`${path}, line 2: invalid UTF-8 byte sequence`);
    expect(await reader.read()).toEqual({ id: '003', name: 'Cy', amount: '1.000' });
    await reader.close();
  });

  it('restarts exactly after the last committed line', async () => {
    const path = tempFile(`HEADER\n${row('001', 'Ann', '12.50')}\r\n\n${row('002', 'Bob', '-3.00')}\n${row('003', 'Zoë', '100.0')}\n${row('004', 'Dé', '0.000')}`);
    const withLine = (r: Record<string, string>, line: number) => ({ ...r, line });
    for (const chunkSize of [16, 19, 64 * 1024]) {
      expect(await checkRestartEverywhere(fw({ path, fields, linesToSkip: 1, chunkSize, map: withLine }))).toBe(4);
    }
  });

  it('validates the field definitions', () => {
    expect(() => fixedWidthReader({ path: 'x', fields: [{ name: 'a', from: 0, to: 3 }] })).toThrow(UsageError);
    expect(() => fixedWidthReader({ path: 'x', fields: [] })).toThrow(UsageError);
  });

  it('reports a missing file', async () => {
    const path = tempFile('') + '.missing';
    await expect(fixedWidthReader({ path, fields }).open({})).rejects.toThrow(`input file ${path} does not exist`);
  });
});

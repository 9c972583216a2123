/**
 * The line splitter under the JSON Lines and fixed-width readers: a long line arriving in many
 * chunks is joined once, when it ends, so that reading it costs time linear in its length (a
 * 15 MB line once took 7 s, re-joined on every 64 KB chunk). Checked by the bytes Buffer.concat
 * copies, not by a clock; plus a whole-file read of such a line through the real reader.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lineSplitter } from '../../src/items/line-source.ts';
import { jsonlReader } from '../../src/items/jsonl-reader.ts';
import { readAll, tempFile } from './helpers.ts';

const CHUNK = 64 * 1024;

/** Feeds `data` to a fresh splitter in CHUNK-sized pieces; returns the records with their ends. */
function split(data: Buffer, options: { maxLineLength?: number } = {}) {
  const splitter = lineSplitter('big.jsonl', { maxLineLength: options.maxLineLength })(0, 1);
  const records: { value: string; line: number; end: number; nextLine: number }[] = [];
  const sink = { add: (value: string, line: number, end: number, nextLine: number) => records.push({ value, line, end, nextLine }) };
  for (let i = 0; i < data.length; i += CHUNK) splitter.write(data.subarray(i, i + CHUNK), sink);
  splitter.end(sink);
  return records;
}

describe('line splitter', () => {
  afterEach(() => vi.restoreAllMocks());

  it('joins a 15 MB line once, not once per chunk', () => {
    const big = 'x'.repeat(15 * 1024 * 1024);
    const data = Buffer.from(`short\r\n${big}\r\nafter\n${big}`);
    const concat = vi.spyOn(Buffer, 'concat');
    const records = split(data);
    const copied = concat.mock.calls.reduce((n, [list]) => n + list.reduce((m, b) => m + b.length, 0), 0);
    const joins = concat.mock.calls.length;
    concat.mockRestore();
    expect(records.map((r) => [r.value.length, r.line, r.end, r.nextLine])).toEqual([
      [5, 1, 7, 2],
      [big.length, 2, 7 + big.length + 2, 3],
      [5, 3, 7 + big.length + 2 + 6, 4],
      [big.length, 4, data.length, 5],
    ]);
    expect(records[1].value === big && records[3].value === big).toBe(true);
    // Each long line is copied once when it is joined (re-joining on every chunk copies ~240 times as much).
    expect(joins).toBeLessThanOrEqual(2);
    expect(copied).toBeLessThanOrEqual(2 * (big.length + 2));
  });

  it('still refuses a line longer than maxLineLength while it is arriving', () => {
    expect(() => split(Buffer.from('y'.repeat(5 * CHUNK)), { maxLineLength: 3 * CHUNK })).toThrow(/big\.jsonl, line 1: line longer than maxLineLength/);
  });

  it('a JSON Lines file with a line of several MB reads whole', async () => {
    const value = 'z'.repeat(6 * 1024 * 1024);
    const path = tempFile(`{"a":1}\n${JSON.stringify({ big: value })}\n{"a":3}\n`);
    const items = (await readAll(() => jsonlReader({ path }))) as { big?: string; a?: number }[];
    expect(items.map((i) => i.a ?? i.big!.length)).toEqual([1, value.length, 3]);
  });
});

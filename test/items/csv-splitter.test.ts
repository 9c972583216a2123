/**
 * The CSV splitter's fast path (lines without quotes split directly, quoted records handed to
 * csv-parse) against csv-parse parsing everything: randomized differential tests on generated
 * files with quoted fields (delimiters, quotes and line ends inside), CRLF and LF, empty lines
 * and fields, stray `\r`, unicode, a byte order mark, wrong field counts and malformed quotes,
 * fed in random chunks and restarted at random record boundaries.
 */
import { describe, it, expect } from 'vitest';
import { parse as parseSync } from 'csv-parse/sync';
import { csvReader, csvSplitter, type CsvSyntaxOptions } from '../../src/items/csv-reader.ts';
import { UnreadableFileError, type SplitterFactory } from '../../src/items/record-source.ts';
import { checkRestartEverywhere, readAll, tempFile } from './helpers.ts';

interface Out {
  value: string[];
  line: number;
  end: number;
  nextLine: number;
}

/** Feeds `input` from `from` in chunks ending at `cuts` (ascending, past `from`); the records and the error. */
function split(factory: SplitterFactory<string[]>, input: Buffer, cuts: number[], from = 0, line = 1): { out: Out[]; error?: Error } {
  const out: Out[] = [];
  const sink = { add: (value: string[], line: number, end: number, nextLine: number) => void out.push({ value, line, end, nextLine }) };
  const splitter = factory(from, line);
  try {
    let p = from;
    for (const c of [...cuts.filter((c) => c > from && c < input.length), input.length]) {
      if (c > p) splitter.write(input.subarray(p, c), sink);
      p = c;
    }
    splitter.end(sink);
    return { out };
  } catch (error) {
    return { out, error: error as Error };
  }
}

/** A seeded pseudo-random generator: an integer in [0, n). */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

interface Generated {
  input: Buffer;
  expected: Out[];
  syntax: CsvSyntaxOptions;
}

/**
 * A valid file and the records in it, built record by record (so the expected values, lines and
 * offsets are known without parsing).
 */
function generate(seed: number, strayCr = true): Generated {
  const random = rng(seed);
  const delimiter = [',', ';', '\t', '|'][random(4)];
  const quote = random(4) === 0 ? "'" : '"';
  const skipEmptyLines = random(3) !== 0;
  const lfOnly = random(5) === 0; // recordDelimiter '\n' only: a \r before it is data
  const syntax: CsvSyntaxOptions = { delimiter, quote, skipEmptyLines, ...(lfOnly ? { recordDelimiter: '\n' } : {}) };
  const pieces = ['a', 'b c', '12.5', '', ' ', 'é', '日本', '🗼', delimiter, quote, '\n', '\r\n', ...(strayCr ? ['\r', 'x\ry'] : [])];
  const columns = 1 + random(4);
  const parts: Buffer[] = [];
  let bytes = 0;
  let line = 1;
  const expected: Out[] = [];
  const put = (text: string) => {
    const b = Buffer.from(text);
    parts.push(b);
    bytes += b.length;
    line += text.split('\n').length - 1;
  };
  if (random(4) === 0) {
    parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
    bytes += 3;
  }
  const records = 1 + random(40);
  for (let r = 0; r < records; r++) {
    while (random(6) === 0) {
      // An empty line: skipped, or a record of one empty field.
      const start = line;
      put(lfOnly ? '\n' : random(2) ? '\n' : '\r\n');
      if (!skipEmptyLines) expected.push({ value: [''], line: start, end: bytes, nextLine: line });
    }
    const n = random(8) === 0 ? columns + (random(2) ? 1 : -1) || 2 : columns;
    const value: string[] = [];
    const texts: string[] = [];
    for (let f = 0; f < n; f++) {
      const text = Array.from({ length: random(4) }, () => pieces[random(pieces.length)]).join('');
      // Quoted when it must be (a \r before a CRLF line end would be part of it), and at times anyway.
      const needsQuotes = text.includes(delimiter) || text.includes(quote) || text.includes('\n') || (text.endsWith('\r') && !lfOnly) || (n === 1 && text === '');
      value.push(text);
      texts.push(needsQuotes || random(10) === 0 ? quote + text.split(quote).join(quote + quote) + quote : text);
    }
    const last = r === records - 1 && random(3) === 0;
    const end = last ? '' : lfOnly ? '\n' : random(2) ? '\n' : '\r\n';
    const start = line;
    put(texts.join(delimiter) + end);
    expected.push({ value, line: start, end: bytes, nextLine: last ? line + 1 : line });
  }
  return { input: Buffer.concat(parts), expected, syntax };
}

/** Random cut points in `input` (from 1-byte chunks to whole). */
function cutsOf(random: (n: number) => number, length: number): number[] {
  const size = [1, 2, 3, 7, 16, 64, 1 << 16][random(7)];
  const cuts: number[] = [];
  for (let p = size; p < length; p += random(3) === 0 ? 1 + random(size) : size) cuts.push(p);
  return cuts;
}

const csvParseOptions = (syntax: CsvSyntaxOptions) => ({
  delimiter: syntax.delimiter,
  quote: syntax.quote,
  escape: syntax.quote,
  record_delimiter: syntax.recordDelimiter ?? ['\r\n', '\n'],
  skip_empty_lines: syntax.skipEmptyLines,
  relax_column_count: true,
  bom: true,
});

describe('csvSplitter', () => {
  it('cuts generated files like csv-parse, with the right lines and offsets, in any chunks and from any record', () => {
    let fastRecords = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const { input, expected, syntax } = generate(seed);
      const random = rng(seed * 7919);
      const where = `seed ${seed}: ${JSON.stringify(input.toString())} ${JSON.stringify(syntax)}`;
      // The values are csv-parse's own.
      expect(parseSync(input, csvParseOptions(syntax)), where).toEqual(expected.map((r) => r.value));
      const fast = csvSplitter('f.csv', syntax);
      const all = csvSplitter('f.csv', syntax, true);
      for (let k = 0; k < 3; k++) {
        const cuts = cutsOf(random, input.length);
        const got = split(fast, input, cuts);
        expect(got.error, where).toBeUndefined();
        expect(got.out, `${where} cuts ${cuts.join(',')}`).toEqual(expected);
        // csv-parse for everything agrees on the values and ends (its lines count a stray \r).
        const reference = split(all, input, cuts);
        expect(reference.error, where).toBeUndefined();
        expect(reference.out.map(({ value, end }) => ({ value, end })), where).toEqual(expected.map(({ value, end }) => ({ value, end })));
      }
      // Restarting at a record's end gives the records after it.
      const at = random(expected.length);
      const { end, nextLine } = expected[at];
      expect(split(fast, input, cutsOf(random, input.length), end, nextLine).out, `${where} from record ${at}`).toEqual(expected.slice(at + 1));
      fastRecords += expected.length;
    }
    expect(fastRecords).toBeGreaterThan(2000);
  });

  it('fails on malformed and unterminated quotes like csv-parse, after the same records, naming the record line', () => {
    let failures = 0;
    for (let seed = 1; seed <= 200; seed++) {
      // No stray \r: csv-parse, which parses everything in the reference, counts it as a line end.
      const { input, syntax, expected } = generate(seed, false);
      const random = rng(seed * 104729);
      const quote = syntax.quote as string;
      // Break one record: a quote inside an unquoted field, text after a closing quote, or an
      // opening quote that is not closed (or is, by a later quote, misreading what follows).
      const r = random(expected.length);
      const start = r > 0 ? expected[r - 1].end : input[0] === 0xef ? 3 : 0;
      const kind = random(3);
      const insert = kind === 0 ? `x${quote}y${syntax.delimiter}` : kind === 1 ? `${quote}q${quote}z${syntax.delimiter}` : `${quote}open${syntax.delimiter}`;
      const broken = Buffer.concat([input.subarray(0, start), Buffer.from(insert), input.subarray(start)]);
      let reference: unknown;
      try {
        parseSync(broken, csvParseOptions(syntax));
      } catch (err) {
        reference = err;
      }
      const where = `seed ${seed}: ${JSON.stringify(broken.toString())} ${JSON.stringify(syntax)}`;
      const all = split(csvSplitter('f.csv', syntax, true), broken, []);
      expect(all.error !== undefined, where).toBe(reference !== undefined);
      for (let k = 0; k < 2; k++) {
        const got = split(csvSplitter('f.csv', syntax), broken, cutsOf(random, broken.length));
        expect(got.out, where).toEqual(all.out);
        if (reference === undefined) {
          expect(got.error, where).toBeUndefined();
          continue;
        }
        failures++;
        expect(got.error, where).toBeInstanceOf(UnreadableFileError);
        expect(got.error!.message, where).toBe(all.error!.message);
        // When the broken record is the first one not returned, the error names its first line.
        if (got.out.length === r) expect((got.error as UnreadableFileError).line, where).toBe(r === 0 ? 1 : expected[r - 1].nextLine);
      }
    }
    expect(failures).toBeGreaterThan(200);
  });

  it('reads a generated file with the fast path through csvReader, restartable everywhere', async () => {
    const random = rng(99);
    let content = 'h1,h2,h3\n';
    const rows: Record<string, string>[] = [];
    const seconds = ['plain', '"a, ""b"""', 'é日本', '', '"two\r\nlines"', '"x\ny"'];
    for (let i = 0; i < 80; i++) {
      const second = seconds[random(seconds.length)];
      const third = random(5) === 0 ? 'ta\ril' : 'end';
      content += [String(i), second, third].join(',') + (random(2) ? '\n' : '\r\n');
      rows.push({ h1: String(i), h2: second.replace(/^"|"$/g, '').replace(/""/g, '"'), h3: third });
    }
    const path = tempFile(content);
    for (const chunkSize of [16, 33, 1 << 16]) {
      expect(await readAll(() => csvReader({ path, chunkSize }))).toEqual(rows);
    }
    expect(await checkRestartEverywhere(() => csvReader({ path, chunkSize: 16, map: (r, line) => ({ ...r, line }) }))).toBe(80);
  });

  it('counts lines by \\n: a stray \\r is data, not a line end', () => {
    const input = Buffer.from('a,b\r,c\n"x\ry",z\n3,4\n');
    expect(split(csvSplitter('f.csv'), input, []).out).toEqual([
      { value: ['a', 'b\r', 'c'], line: 1, end: 7, nextLine: 2 },
      { value: ['x\ry', 'z'], line: 2, end: 15, nextLine: 3 },
      { value: ['3', '4'], line: 3, end: 19, nextLine: 4 },
    ]);
  });
});

/**
 * Property test of the CSV splitter (src/items/csv-reader.ts) against csv-parse: any text made of
 * the characters that matter (delimiters, quotes, CR, LF, spaces, multi-byte characters), in any
 * of the supported syntaxes, fed in chunks cut at any byte, gives csv-parse's records, or fails
 * (UnreadableFileError) exactly where csv-parse fails.
 */
import fc from 'fast-check';
import { parse as parseSync } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { csvSplitter, type CsvSyntaxOptions } from '../../src/items/csv-reader.ts';
import { UnreadableFileError } from '../../src/items/record-source.ts';
import { propertyOptions } from '../support/property.ts';

const syntaxes: fc.Arbitrary<CsvSyntaxOptions> = fc.record({
  delimiter: fc.constantFrom(',', ';', '\t', '|'),
  quote: fc.constantFrom('"', "'"),
  skipEmptyLines: fc.boolean(),
  lfOnly: fc.boolean(),
}).map(({ lfOnly, ...s }) => ({ ...s, ...(lfOnly ? { recordDelimiter: '\n' } : {}) }));

const cases = syntaxes.chain((syntax) => {
  const pieces = ['a', 'b', ' ', 'é', '🗼', '12', syntax.delimiter!, syntax.quote as string, '\n', '\r\n', '\r', ''];
  return fc.record({
    syntax: fc.constant(syntax),
    bom: fc.boolean(),
    text: fc.array(fc.constantFrom(...pieces), { maxLength: 40 }).map((p) => p.join('')),
    cuts: fc.array(fc.nat(), { maxLength: 8 }),
  });
});

/** csv-parse's records, or its error. */
function reference(input: Buffer, syntax: CsvSyntaxOptions): { records?: string[][]; error?: unknown } {
  try {
    return {
      records: parseSync(input, {
        delimiter: syntax.delimiter,
        quote: syntax.quote,
        escape: syntax.quote,
        record_delimiter: syntax.recordDelimiter ?? ['\r\n', '\n'],
        skip_empty_lines: syntax.skipEmptyLines,
        relax_column_count: true,
        bom: true,
      }) as string[][],
    };
  } catch (error) {
    return { error };
  }
}

/** The splitter's records, fed in chunks ending at `cuts`, and its error. */
function splitter(input: Buffer, syntax: CsvSyntaxOptions, cuts: number[]): { records: string[][]; error?: unknown } {
  const records: string[][] = [];
  const sink = { add: (value: string[]) => void records.push(value) };
  const s = csvSplitter('f.csv', syntax)(0, 1);
  try {
    let p = 0;
    for (const c of [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b).concat(input.length)) {
      if (c > p) s.write(input.subarray(p, c), sink);
      p = Math.max(p, c);
    }
    s.end(sink);
    return { records };
  } catch (error) {
    return { records, error };
  }
}

describe('CSV splitter against csv-parse (property-based)', () => {
  it('gives csv-parse\'s records, in any chunks, or fails where csv-parse fails', () => {
    fc.assert(
      fc.property(cases, ({ syntax, bom, text, cuts }) => {
        const input = Buffer.concat([Buffer.from(bom ? [0xef, 0xbb, 0xbf] : []), Buffer.from(text)]);
        const where = `${JSON.stringify(text)} ${JSON.stringify(syntax)}`;
        const ref = reference(input, syntax);
        const got = splitter(input, syntax, cuts);
        if (ref.error !== undefined) {
          expect(got.error, `${where}: csv-parse failed (${String(ref.error)})`).toBeInstanceOf(UnreadableFileError);
        } else {
          expect(got.error, where).toBeUndefined();
          expect(got.records, where).toEqual(ref.records);
        }
      }),
      propertyOptions(5),
    );
  });
});

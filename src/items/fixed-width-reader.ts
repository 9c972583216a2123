import { UsageError } from '../core/errors.ts';
import type { FileItemReader } from './record-source.ts';
import { RecordError } from './record-source.ts';
import { lineReader, type LineReaderOptions } from './line-source.ts';
import { requireFileOptions } from './file-options.ts';

/**
 * A field of a fixed-width record, in characters (UTF-16 code units): either `start` (0-based)
 * and `length`, or `from` and `to` (1-based, inclusive, as in "columns 1-10").
 */
export type FixedWidthField =
  | {
      /** The field's name in the record. */
      name: string;
      /** Its first character, 0-based. */
      start: number;
      /** Its length in characters. */
      length: number;
    }
  | {
      /** The field's name in the record. */
      name: string;
      /** Its first column, 1-based. */
      from: number;
      /** Its last column, 1-based, inclusive. */
      to: number;
    };

/** Options of {@link fixedWidthReader}. */
export interface FixedWidthReaderOptions<T> extends LineReaderOptions {
  /** The fields each line is cut into. */
  fields: FixedWidthField[];
  /** Trim spaces around each value. Default true. */
  trim?: boolean | undefined;
  /**
   * Accept a line shorter than the last field's end when the missing part is only trailing
   * padding: the fields past the end are empty (or cut). Default false: a short line is an error.
   */
  allowShortLines?: boolean | undefined;
  /** Turns the record into an item; `line` is its 1-based line number. */
  map?: ((record: Record<string, string>, line: number) => T) | undefined;
}

/**
 * A restartable reader of a fixed-width file: each line is cut into named fields. A line shorter
 * than the fields need is a recoverable ItemParseError naming the file and line.
 */
export function fixedWidthReader<T = Record<string, string>>(options: FixedWidthReaderOptions<T>): FileItemReader<T> {
  requireFileOptions('fixedWidthReader', options);
  const names: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  for (const f of options.fields) {
    const [start, end] = 'from' in f ? [f.from - 1, f.to] : [f.start, f.start + f.length];
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start)) {
      throw new UsageError(`fixed-width field ${JSON.stringify(f.name)} has a bad range: ${JSON.stringify(f)}`);
    }
    names.push(f.name);
    starts.push(start);
    ends.push(end);
  }
  if (names.length === 0) throw new UsageError('fixedWidthReader needs at least one field');
  const minLength = Math.max(...ends);
  const trim = options.trim ?? true;
  const allowShort = options.allowShortLines ?? false;
  const map = options.map;
  return lineReader<T>('fixedWidthReader', options, (line, lineNumber) => {
    if (line.length < minLength && !allowShort) {
      throw new RecordError(`line too short: ${line.length} characters, the fields need ${minLength}`);
    }
    const record: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) {
      const value = line.slice(starts[i], ends[i]);
      record[names[i]] = trim ? value.trim() : value;
    }
    return map ? map(record, lineNumber) : (record as T);
  });
}

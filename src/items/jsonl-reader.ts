import type { FileItemReader } from './record-source.ts';
import { RecordError } from './record-source.ts';
import { lineReader, type LineReaderOptions } from './line-source.ts';
import { requireFileOptions } from './file-options.ts';

/** Options of {@link jsonlReader}. */
export interface JsonlReaderOptions<T> extends LineReaderOptions {
  /** Turns a parsed line into an item (e.g. validates it); `line` is its 1-based line number. */
  map?: ((value: unknown, line: number) => T) | undefined;
}

/**
 * A restartable reader of a JSON Lines file: one JSON value per line; empty and blank lines are
 * skipped. A line that is not valid JSON (or not valid UTF-8) is a recoverable ItemParseError
 * naming the file and line: the next `read()` returns the following line.
 */
export function jsonlReader<T = unknown>(options: JsonlReaderOptions<T>): FileItemReader<T> {
  requireFileOptions('jsonlReader', options);
  const map = options.map;
  return lineReader<T>('jsonlReader', options, (line, lineNumber) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new RecordError(`invalid JSON: ${(err as Error).message}`);
    }
    return map ? map(value, lineNumber) : (value as T);
  });
}

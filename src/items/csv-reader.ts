/**
 * A restartable CSV (delimited file) reader built on csv-parse.
 *
 * csv-parse's parsing core is driven directly, chunk by chunk, from {@link RecordSource}: its push
 * callback sees the live parser `info` (line count, byte count), so each record gets its line
 * number and end offset without the per-record objects that the `info`/`raw` options allocate.
 */
import { Parser } from 'csv-parse';
import { UsageError, errorMessage } from '../core/errors.ts';
import {
  RecordError,
  UnreadableFileError,
  at,
  fileRecordReader,
  type FileItemReader,
  type FileReaderOptions,
  type RecordSink,
  type Splitter,
  type SplitterFactory,
} from './record-source.ts';

/** Options of {@link csvReader}. */
export interface CsvReaderOptions<T> extends FileReaderOptions {
  /** Field delimiter (one or more characters). Default `,`. */
  delimiter?: string;
  /**
   * Record delimiters. Default `['\r\n', '\n']`: Unix and Windows line ends, even mixed (for
   * old Mac files, pass `'\r'`).
   */
  recordDelimiter?: string | string[];
  /** Quote character, or false for none. Default `"`. */
  quote?: string | false;
  /** Escape character inside quoted fields. Default: the quote (`""` stands for `"`). */
  escape?: string;
  /**
   * Whether the first line is a header. Default: true unless `columns` is given. Records are
   * objects keyed by the header's names, or by `columns` when given (the header line is then
   * skipped, and must have as many fields).
   */
  header?: boolean;
  /** Column names; required when `header` is false. */
  columns?: string[];
  /** The header the file must have (exactly); otherwise open() throws a UsageError. */
  expectHeader?: string[];
  /** Accept quotes inside unquoted fields and after closing quotes, as data. Default false. */
  relaxQuotes?: boolean;
  /** Trim spaces and tabs around unquoted values. Default false. */
  trim?: boolean;
  /** Skip empty lines. Default true (otherwise an empty line is a record with one empty field). */
  skipEmptyLines?: boolean;
  /**
   * A record longer than this (in bytes, checked per chunk read) is an unrecoverable error; it
   * protects memory from an unterminated quote in a large file. Default 16 MiB; 0 for no limit.
   */
  maxRecordSize?: number;
  /** Turns a record into an item; `line` is the 1-based line on which the record starts. */
  map?: (record: Record<string, string>, line: number) => T;
}

/** The part of csv-parse's core (`Parser#api`) that is used. */
interface CsvApi {
  readonly info: { bytes: number; lines: number; empty_lines: number; comment_lines: number; invalid_field_length: number };
  readonly state: { record: unknown[] };
  parse(buf: Buffer | undefined, end: boolean, push: (record: never) => void, close: () => void): unknown;
}

/** A record whose field count differs from the header's. */
class FieldCountMismatch {
  constructor(readonly found: number) {}
}

type CsvRecord = Record<string, string> | FieldCountMismatch;

/** The csv-parse options shared by the header and the record parsers. */
type ParserOptions = ConstructorParameters<typeof Parser>[0];

function createApi(options: ParserOptions): CsvApi {
  let parser: Parser;
  try {
    parser = new Parser(options);
  } catch (err) {
    throw new UsageError(`bad CSV options: ${errorMessage(err)}`, { cause: err });
  }
  const api = (parser as unknown as { api?: CsvApi }).api;
  if (api === undefined || typeof api.parse !== 'function') throw new Error('unsupported csv-parse version: Parser#api is missing');
  return api;
}

/**
 * Feeds chunks to csv-parse's core and hands its records to the sink with their position.
 * csv-parse's line count (`info.lines`) counts a CRLF inside a quoted field twice: this is
 * corrected by counting the CRLFs in the fields of the (rare) records that span several lines.
 */
class CsvSplitter<R> implements Splitter<R> {
  private readonly api: CsvApi;
  private sink!: RecordSink<R>;
  /** Line after the last record, and csv-parse's count of skipped (empty) lines then. */
  private nextLine: number;
  private skipped = 0;
  /** How many lines csv-parse counted too many so far. */
  private overcount = 0;
  private invalid = 0;
  /** Absolute offsets: after the last record, and after the bytes fed to the parser. */
  private lastEnd: number;
  private fed: number;

  constructor(
    private readonly file: string,
    options: ParserOptions,
    private readonly offset: number,
    private readonly line0: number,
    private readonly maxRecordSize: number,
  ) {
    this.api = createApi(options);
    this.nextLine = line0;
    this.lastEnd = this.fed = offset;
  }

  private readonly push = (record: R): void => {
    const api = this.api;
    const info = api.info;
    const end = this.offset + info.bytes;
    const skipped = info.empty_lines + info.comment_lines;
    const line = this.nextLine + skipped - this.skipped;
    this.skipped = skipped;
    let endLine = this.line0 - 1 + info.lines - this.overcount;
    if (endLine > line) {
      const crlf = countCrlf(api.state.record);
      this.overcount += crlf;
      endLine -= crlf;
    }
    this.nextLine = endLine + 1;
    if (info.invalid_field_length !== this.invalid) {
      this.invalid = info.invalid_field_length;
      record = new FieldCountMismatch(api.state.record.length) as R;
    }
    this.lastEnd = end;
    this.sink.add(record, line, end, this.nextLine);
  };

  write(chunk: Buffer, sink: RecordSink<R>): void {
    this.sink = sink;
    this.fed += chunk.length;
    const err = this.api.parse(chunk, false, this.push, noop);
    if (err !== undefined) throw this.fatal(err);
    // Checked per chunk rather than per byte (csv-parse's max_record_size), which is slower.
    if (this.maxRecordSize > 0 && this.fed - this.lastEnd > this.maxRecordSize) throw this.fatal({ code: 'MAX_RECORD_SIZE' });
  }

  end(sink: RecordSink<R>): void {
    this.sink = sink;
    const err = this.api.parse(undefined, true, this.push, noop);
    if (err !== undefined) throw this.fatal(err);
  }

  private fatal(err: unknown): Error {
    const info = this.api.info;
    const line = this.nextLine + info.empty_lines + info.comment_lines - this.skipped;
    const fail = (problem: string) => new UnreadableFileError(at(this.file, line, problem), this.file, line);
    switch ((err as { code?: string }).code) {
      case 'CSV_QUOTE_NOT_CLOSED':
        return fail('unterminated quoted field: the file ends inside it');
      case 'MAX_RECORD_SIZE':
        return fail(`record longer than maxRecordSize (${this.maxRecordSize} bytes); unterminated quote?`);
      case 'CSV_INVALID_CLOSING_QUOTE':
      case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
        return fail('malformed quoted field: a closing quote is followed by something other than a delimiter (set relaxQuotes to accept it)');
      case 'INVALID_OPENING_QUOTE':
        return fail('malformed field: a quote inside an unquoted field (set relaxQuotes to accept it)');
      default:
        return fail(`cannot parse: ${errorMessage(err)}`);
    }
  }
}

function noop(): void {}

function countCrlf(fields: unknown[]): number {
  let n = 0;
  for (const field of fields) {
    if (typeof field !== 'string') continue;
    for (let i = field.indexOf('\r\n'); i >= 0; i = field.indexOf('\r\n', i + 2)) n++;
  }
  return n;
}

/**
 * A restartable, streaming reader of a delimited file. Records are objects keyed by the column
 * names (from the header line, or `columns`), passed through `map` when given.
 *
 * - Restart: `update(ctx)` saves the byte offset and line number of the next record; `open(ctx)`
 *   re-reads only the header, then starts reading at that offset.
 * - A record with the wrong number of fields, or with bytes that are not valid UTF-8, is a
 *   recoverable ItemParseError naming the file and line (the first line of the record), with the
 *   raw record: the next `read()` returns the following record. A record with invalid UTF-8 is
 *   still parsed (the bad bytes decode as U+FFFD), so reading stays in sync.
 * - An unterminated quote, a malformed quoted field (unless `relaxQuotes`) or a record over
 *   `maxRecordSize` throw UnreadableFileError (a UsageError, not skippable): reading ends.
 * - A missing or unreadable file, an empty file when a header is expected, or a header other
 *   than `expectHeader`, make `open` throw a UsageError naming the file.
 */
export function csvReader<T = Record<string, string>>(options: CsvReaderOptions<T>): FileItemReader<T> {
  const { path, columns, expectHeader, map } = options;
  const header = options.header ?? columns === undefined;
  if (!header && columns === undefined) throw new UsageError(`csvReader(${path}): give the column names (columns) when the file has no header`);
  if (expectHeader !== undefined && !header) throw new UsageError(`csvReader(${path}): expectHeader needs header: true`);
  const maxRecordSize = options.maxRecordSize ?? 16 * 1024 * 1024;
  const recordDelimiters = [options.recordDelimiter ?? ['\r\n', '\n']].flat();
  const base: ParserOptions = {
    delimiter: options.delimiter ?? ',',
    record_delimiter: recordDelimiters,
    quote: options.quote === false ? null : (options.quote ?? '"'),
    escape: options.escape ?? (options.quote === false ? null : (options.quote ?? '"')),
    bom: true,
    encoding: 'utf8',
    relax_column_count: true,
    relax_quotes: options.relaxQuotes ?? false,
    trim: options.trim ?? false,
    skip_empty_lines: options.skipEmptyLines ?? true,
  };
  createApi(base); // validates the options now rather than on open
  let names: string[] | undefined = header ? undefined : columns;
  const splitter =
    <R>(parserOptions: ParserOptions): SplitterFactory<R> =>
    (offset, line) =>
      new CsvSplitter<R>(path, parserOptions, offset, line, maxRecordSize);

  return fileRecordReader<CsvRecord, T>('csvReader', options, {
    splitter: (offset, line) => splitter<CsvRecord>({ ...base, columns: names })(offset, line),
    async prepare(fromStart) {
      if (!header) return undefined;
      const source = fromStart(splitter<string[]>({ ...base, columns: false }));
      if (!(await source.advance())) throw new UsageError(`file ${path} is empty: expected a header line`);
      const fileHeader = source.value;
      if (source.badEncoding) throw new UnreadableFileError(at(path, source.line, 'the header is not valid UTF-8'), path, source.line);
      if (expectHeader !== undefined && (fileHeader.length !== expectHeader.length || fileHeader.some((h, i) => h !== expectHeader[i]))) {
        throw new UsageError(`${path}: unexpected header: expected ${JSON.stringify(expectHeader)}, found ${JSON.stringify(fileHeader)}`);
      }
      if (columns !== undefined && columns.length !== fileHeader.length) {
        throw new UsageError(`${path}: the header has ${fileHeader.length} columns but ${columns.length} column names are given`);
      }
      names = columns ?? fileHeader;
      return { offset: source.end, line: source.nextLine };
    },
    decode(source) {
      const record = source.value;
      if (record instanceof FieldCountMismatch) {
        throw new RecordError(`expected ${names!.length} fields, found ${record.found}`);
      }
      return map ? map(record, source.line) : (record as T);
    },
  });
}

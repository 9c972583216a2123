/**
 * A restartable CSV (delimited file) reader built on csv-parse.
 *
 * For the common syntax (a one-byte delimiter and quote, `\n` or `\r\n` line ends), a line without
 * a quote is split on the delimiter directly and only the records with quotes go through
 * csv-parse, one at a time; other options have csv-parse parse everything. Either way each record
 * gets its line number and end offset (see {@link csvSplitter}).
 */
import { isAscii } from 'node:buffer';
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
import { requireFileOptions } from './file-options.ts';

/** The syntax of a delimited file (options of {@link csvReader} and {@link csvSplitter}). */
export interface CsvSyntaxOptions {
  /** Field delimiter (one or more characters). Default `,`. */
  delimiter?: string | undefined;
  /**
   * Record delimiters. Default `['\r\n', '\n']`: Unix and Windows line ends, even mixed (for
   * old Mac files, pass `'\r'`).
   */
  recordDelimiter?: string | string[] | undefined;
  /** Quote character, or false for none. Default `"`. */
  quote?: string | false | undefined;
  /** Escape character inside quoted fields. Default: the quote (`""` stands for `"`). */
  escape?: string | undefined;
  /** Accept quotes inside unquoted fields and after closing quotes, as data. Default false. */
  relaxQuotes?: boolean | undefined;
  /** Trim white space around values, outside their quotes (as JavaScript's `trim`: spaces, tabs, no-break and other Unicode spaces). Default false. */
  trim?: boolean | undefined;
  /** Skip empty lines. Default true (otherwise an empty line is a record with one empty field). */
  skipEmptyLines?: boolean | undefined;
  /**
   * A record longer than this (in bytes, checked per chunk read) is an unrecoverable error; it
   * protects memory from an unterminated quote in a large file. Default 16 MiB; 0 for no limit.
   */
  maxRecordSize?: number | undefined;
}

/** Options of {@link csvReader}. */
/** The keys of a CSV record: the `columns` named (C), else the `expectHeader` names (H), else any string. */
export type CsvRecordKeys<H extends string, C extends string> = string extends C ? H : C;

/**
 * `H` and `C`: the names `expectHeader` and `columns` list (inferred from them), so that `map`'s
 * record has exactly its keys: those of `columns` when given, else those of `expectHeader`, else
 * any name.
 */
export interface CsvReaderOptions<T, H extends string = string, C extends string = string> extends FileReaderOptions, CsvSyntaxOptions {
  /**
   * Whether the first line is a header. Default: true unless `columns` is given. Records are
   * objects keyed by the header's names, or by `columns` when given (the header line is then
   * skipped, and must have as many fields).
   */
  header?: boolean | undefined;
  /** Column names; required when `header` is false. */
  columns?: readonly C[] | undefined;
  /** The header the file must have (exactly); otherwise open() throws a UsageError. */
  expectHeader?: readonly H[] | undefined;
  /**
   * Turns a record into an item; `line` is the 1-based line on which the record starts. With
   * `columns` or `expectHeader`, the record's keys are those names (`record.id` is a string).
   */
  map?: ((record: Record<CsvRecordKeys<H, C>, string>, line: number) => T) | undefined;
}

/** The part of csv-parse's core (`Parser#api`) that is used. */
interface CsvApi {
  readonly state: { previousBuf: Buffer | undefined };
  readonly info: { bytes: number; lines: number; empty_lines: number; comment_lines: number };
  parse(buf: Buffer | undefined, end: boolean, push: (record: string[]) => void, close: () => void): unknown;
}

/** csv-parse's options. */
type ParserOptions = ConstructorParameters<typeof Parser>[0];

function createApi(options: ParserOptions): CsvApi {
  let parser: Parser;
  try {
    parser = new Parser(options);
  } catch (err) {
    throw new UsageError(`bad CSV options: ${errorMessage(err)}`, { cause: err });
  }
  const api = (parser as unknown as { api?: CsvApi }).api;
  if (api === undefined || typeof api.parse !== 'function' || typeof api.state !== 'object') throw new Error('unsupported csv-parse version: Parser#api is missing');
  return api;
}

/** The message of an unrecoverable error from csv-parse (or the size limit), naming the line. */
function fatalError(file: string, line: number, err: unknown, maxRecordSize: number): UnreadableFileError {
  const fail = (problem: string) => new UnreadableFileError(at(file, line, problem), file, line);
  switch ((err as { code?: string }).code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return fail('unterminated quoted field: the file ends inside it');
    case 'MAX_RECORD_SIZE':
      return fail(`record longer than maxRecordSize (${maxRecordSize} bytes); unterminated quote?`);
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return fail('malformed quoted field: a closing quote is followed by something other than a delimiter (set relaxQuotes to accept it)');
    case 'INVALID_OPENING_QUOTE':
      return fail('malformed field: a quote inside an unquoted field (set relaxQuotes to accept it)');
    default:
      return fail(`cannot parse: ${errorMessage(err)}`);
  }
}

const TOO_LONG = { code: 'MAX_RECORD_SIZE' };

/** The fields of `text` from `s` to `e` (a non-empty line), cut at each one-character delimiter. */
function splitFields(text: string, s: number, e: number, delimiter: string): string[] {
  const fields: string[] = [];
  let p = s;
  for (let d = text.indexOf(delimiter, p); d >= 0 && d < e; d = text.indexOf(delimiter, p)) {
    fields.push(text.slice(p, d));
    p = d + 1;
  }
  fields.push(text.slice(p, e));
  return fields;
}

const NL = 10;
const CR = 13;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function noop(): void {}

/** Finds a character (given as a string and as a byte) from an index: in a text or in its bytes. */
type Find = (char: string, byte: number, from: number) => number;

/** The line ends from `from` to `to`. */
function countNewlines(find: Find, from: number, to: number): number {
  let n = 0;
  for (let i = find('\n', NL, from); i >= 0 && i < to; i = find('\n', NL, i + 1)) n++;
  return n;
}

/**
 * The splitter for the common syntax: a one-byte delimiter and quote, the quote as its own escape,
 * `\n` or `\r\n` line ends, strict quotes, no trimming. A line without a quote (nor a `\r` other
 * than its line end) is a record by itself and is split on the delimiter directly. A record whose
 * first line has one is handed to csv-parse, from its first byte to the first line end after an
 * even number of quotes: with strict quotes that are their own escape, a quote opens or closes a
 * quoted field (`""` inside one is two quotes), so csv-parse ends the record there too, or reports
 * the malformed quote first. A run of such records goes to csv-parse in one go, and its input is
 * then ended, ready for the next run. The differential tests in test/items/csv-splitter.test.ts
 * hold all this to csv-parse's own parsing.
 */
class FastCsvSplitter implements Splitter<string[]> {
  /** An incomplete line at the end of the bytes seen, outside any quoted record (in pieces). */
  private rest: Buffer[] = [];
  private restLength = 0;
  /** Absolute offset after the bytes received. */
  private fed: number;
  /** Line number of the next line to cut (of `rest`, when there is one). */
  private line: number;
  private atFileStart: boolean;
  /** The first bytes of the file, while they may be the start of a byte order mark. */
  private head: Buffer | undefined;
  private api: CsvApi | undefined;
  /** Whether a record is being fed to csv-parse (the input ends inside it), and where it starts. */
  private inRecord = false;
  private recordLine = 0;
  private recordStart = 0;
  /** `\n` bytes seen so far in that record, and whether its last byte fed is inside quotes. */
  private recordNewlines = 0;
  private inQuotes = false;
  /** Where the records fed to csv-parse, and not returned by it yet, start and end. */
  private readonly pendingLines: number[] = [];
  private readonly pendingEnds: number[] = [];
  private pendingHead = 0;
  private sink!: RecordSink<string[]>;
  private readonly onRecord = (record: string[]): void => {
    const i = this.pendingHead++;
    const line = this.pendingLines[i];
    const nextLine = i + 1 < this.pendingLines.length ? this.pendingLines[i + 1] : this.line;
    this.sink.add(record, line, this.pendingEnds[i], nextLine);
  };

  constructor(
    private readonly file: string,
    private readonly options: ParserOptions,
    private readonly syntax: FastSyntax,
    offset: number,
    line: number,
    private readonly maxRecordSize: number,
  ) {
    this.fed = offset;
    this.line = line;
    this.atFileStart = offset === 0;
  }

  write(chunk: Buffer, sink: RecordSink<string[]>): void {
    if (this.atFileStart) {
      // A byte order mark is dropped (once its 3 bytes are in).
      const head = this.head === undefined ? chunk : Buffer.concat([this.head, chunk]);
      if (head.length < 3 && BOM.subarray(0, head.length).equals(head)) {
        this.head = head;
        return;
      }
      this.head = undefined;
      this.atFileStart = false;
      chunk = head;
      if (head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) {
        chunk = head.subarray(3);
        this.fed += 3;
      }
    }
    const chunkStart = this.fed;
    this.fed += chunk.length;
    if (this.inRecord || this.restLength === 0) {
      this.cut(chunk, 0, chunkStart, sink);
    } else if (chunk.includes(NL)) {
      this.rest.push(chunk);
      const line = Buffer.concat(this.rest, this.restLength + chunk.length);
      this.rest = [];
      this.restLength = 0;
      this.cut(line, 0, this.fed - line.length, sink);
    } else {
      // Still no line end: the pieces are joined once it comes.
      this.rest.push(chunk);
      this.restLength += chunk.length;
    }
    if (this.maxRecordSize > 0 && (this.inRecord ? this.fed - this.recordStart : this.restLength) > this.maxRecordSize) {
      throw this.fatal(this.inRecord ? this.recordLine : this.line, TOO_LONG);
    }
  }

  end(sink: RecordSink<string[]>): void {
    if (this.head !== undefined) {
      // A file shorter than a byte order mark that starts like one.
      const head = this.head;
      this.head = undefined;
      this.atFileStart = false;
      this.write(head, sink);
    }
    if (this.restLength > 0) {
      // The last line, without a line end.
      const rest = Buffer.concat(this.rest, this.restLength);
      this.rest = [];
      this.restLength = 0;
      const base = this.fed - rest.length;
      if ((this.syntax.quote >= 0 && rest.includes(this.syntax.quote)) || rest.includes(CR)) {
        this.startRecord(base);
        this.continueRecord(rest, undefined, 0, base, sink);
      } else {
        const line = this.line++;
        const text = rest.toString('utf8');
        sink.add(splitFields(text, 0, text.length, this.syntax.delimiter), line, this.fed, this.line);
      }
    }
    if (this.inRecord) {
      // The last record, without a line end.
      this.line = this.recordLine + this.recordNewlines + 1;
      this.pendingLines.push(this.recordLine);
      this.pendingEnds.push(this.fed);
      this.sink = sink;
      const err = this.api!.parse(undefined, true, this.onRecord, noop);
      if (err !== undefined) throw this.fatal(this.pendingHead < this.pendingLines.length ? this.pendingLines[this.pendingHead] : this.recordLine, err);
      this.inRecord = false;
    }
  }

  /**
   * Cuts the records of `buf` (whose byte 0 is at absolute offset `base`) from index `s`: the rest
   * of a record being parsed, if any, then lines.
   */
  private cut(buf: Buffer, s: number, base: number, sink: RecordSink<string[]>): void {
    const length = buf.length;
    // The usual case: ASCII, where the text's indexes are the buffer's, and fields are cut from one string.
    const text = isAscii(buf) ? buf.toString('latin1') : undefined;
    if (this.inRecord) s = this.continueRecord(buf, text, s, base, sink);
    if (s >= 0) s = text !== undefined ? this.cutText(buf, text, s, base, sink) : this.cutBytes(buf, s, base, sink);
    if (s >= 0 && s < length) {
      this.rest.push(buf.subarray(s));
      this.restLength = length - s;
    }
  }

  /** {@link cut} when `text` is `buf` as ASCII; returns where the incomplete line starts, or -1. */
  private cutText(buf: Buffer, text: string, s: number, base: number, sink: RecordSink<string[]>): number {
    const { quote, quoteChar, crlf, skipEmpty, delimiter } = this.syntax;
    const length = text.length;
    // Where the next quote and the next \r are, at or after s (length: none).
    let nextQuote = quote < 0 ? length : -1;
    let nextCr = -1;
    for (let nl = text.indexOf('\n', s); nl >= 0; nl = text.indexOf('\n', s)) {
      let e = nl;
      if (crlf && e > s && text.charCodeAt(e - 1) === CR) e--;
      if (nextQuote < s) {
        nextQuote = text.indexOf(quoteChar, s);
        if (nextQuote < 0) nextQuote = length;
      }
      if (nextCr < s) {
        nextCr = text.indexOf('\r', s);
        if (nextCr < 0) nextCr = length;
      }
      if (nextQuote < nl || nextCr < e) {
        this.startRecord(base + s);
        s = this.continueRecord(buf, text, s, base, sink);
        if (s < 0) return -1;
        continue;
      }
      const line = this.line++;
      if (e === s) {
        s = nl + 1;
        if (!skipEmpty) sink.add([''], line, base + s, this.line);
        continue;
      }
      const fields = splitFields(text, s, e, delimiter);
      s = nl + 1;
      sink.add(fields, line, base + s, this.line);
    }
    return s;
  }

  /** {@link cut} for any bytes: each line is decoded by itself. */
  private cutBytes(buf: Buffer, s: number, base: number, sink: RecordSink<string[]>): number {
    const { quote, crlf, skipEmpty, delimiter } = this.syntax;
    const length = buf.length;
    let nextQuote = quote < 0 ? length : -1;
    let nextCr = -1;
    for (let nl = buf.indexOf(NL, s); nl >= 0; nl = buf.indexOf(NL, s)) {
      let e = nl;
      if (crlf && e > s && buf[e - 1] === CR) e--;
      if (nextQuote < s) {
        nextQuote = buf.indexOf(quote, s);
        if (nextQuote < 0) nextQuote = length;
      }
      if (nextCr < s) {
        nextCr = buf.indexOf(CR, s);
        if (nextCr < 0) nextCr = length;
      }
      if (nextQuote < nl || nextCr < e) {
        this.startRecord(base + s);
        s = this.continueRecord(buf, undefined, s, base, sink);
        if (s < 0) return -1;
        continue;
      }
      const line = this.line++;
      if (e === s) {
        s = nl + 1;
        if (!skipEmpty) sink.add([''], line, base + s, this.line);
        continue;
      }
      const text = buf.toString('utf8', s, e);
      const fields = splitFields(text, 0, text.length, delimiter);
      s = nl + 1;
      sink.add(fields, line, base + s, this.line);
    }
    return s;
  }

  private startRecord(start: number): void {
    this.inRecord = true;
    this.inQuotes = false;
    this.recordStart = start;
    this.recordLine = this.line;
    this.recordNewlines = 0;
  }

  /**
   * Feeds csv-parse the records from index `s` of `buf` (`text` is `buf` as ASCII, if it is): the
   * current record, and the records with quotes right after it (a run of them is parsed in one
   * go). Returns the index after the last one, its input ended, or -1 if `buf` ends inside a record.
   */
  private continueRecord(buf: Buffer, text: string | undefined, s: number, base: number, sink: RecordSink<string[]>): number {
    const { quote, quoteChar, crlf } = this.syntax;
    const find: Find = text !== undefined ? (c, _b, i) => text.indexOf(c, i) : (_c, b, i) => buf.indexOf(b, i);
    const noQuote = quote < 0;
    let inQuotes = this.inQuotes;
    /** Where the current record's bytes in `buf` start, and how far it is scanned. */
    let from = s;
    let p = s;
    let end = -1;
    // The next quote, line end and \r found (-1: none in `buf`; -2: not looked for yet).
    let q = noQuote ? -1 : -2;
    let nl = -2;
    let cr = -2;
    for (;;) {
      // The current record ends at the first line end after an even number of quotes.
      if (q !== -1 && q < p) q = find(quoteChar, quote, p);
      if (inQuotes) {
        if (q < 0) break;
        inQuotes = false;
        p = q + 1;
        continue;
      }
      if (nl !== -1 && nl < p) nl = find('\n', NL, p);
      if (nl < 0 || (q >= 0 && q < nl)) {
        if (q < 0) break;
        inQuotes = true;
        p = q + 1;
        continue;
      }
      end = nl + 1;
      this.recordNewlines += countNewlines(find, from, end);
      this.line = this.recordLine + this.recordNewlines;
      this.pendingLines.push(this.recordLine);
      this.pendingEnds.push(base + end);
      // The next line joins the run if it is complete, not empty, and has a quote or a stray \r.
      nl = find('\n', NL, end);
      const e = nl > end && crlf && buf[nl - 1] === CR ? nl - 1 : nl;
      if (e > end) {
        if (q !== -1 && q < end) q = find(quoteChar, quote, end);
        if (cr !== -1 && cr < end) cr = find('\r', CR, end);
        if ((q >= 0 && q < nl) || (cr >= 0 && cr < e)) {
          this.startRecord(base + end);
          from = p = end;
          end = -1;
          continue;
        }
      }
      break;
    }
    this.inQuotes = inQuotes;
    if (end < 0) this.recordNewlines += countNewlines(find, from, buf.length);
    const api = (this.api ??= createApi(this.options));
    // Before a line end, csv-parse waits for more input (a line end could be longer), so after the
    // run its input is ended, and its left-over buffer dropped to take the next run afresh.
    this.sink = sink;
    const err = api.parse(end < 0 ? buf.subarray(s) : buf.subarray(s, end), end >= 0, this.onRecord, noop);
    if (err !== undefined) throw this.fatal(this.pendingHead < this.pendingLines.length ? this.pendingLines[this.pendingHead] : this.recordLine, err);
    if (end < 0) return -1;
    api.state.previousBuf = undefined;
    this.inRecord = false;
    this.pendingLines.length = this.pendingEnds.length = this.pendingHead = 0;
    return end;
  }

  private fatal(line: number, err: unknown): Error {
    return fatalError(this.file, line, err, this.maxRecordSize);
  }
}

/** The syntax the fast splitter handles (see {@link FastCsvSplitter}). */
interface FastSyntax {
  delimiter: string;
  /** The quote's byte, or -1 for none, and the quote (or ''). */
  quote: number;
  quoteChar: string;
  /** Whether `\r\n` ends a line (otherwise only `\n`). */
  crlf: boolean;
  skipEmpty: boolean;
}

/**
 * The splitter for any syntax: csv-parse's core is fed the chunks, and its push callback sees the
 * live parser `info` (line count, byte count), so each record gets its line number and end
 * offset. csv-parse's line count (`info.lines`) counts a CRLF inside a quoted field twice: this is
 * corrected by counting the CRLFs in the fields of the (rare) records that span several lines.
 */
class CsvParseSplitter implements Splitter<string[]> {
  private readonly api: CsvApi;
  private sink!: RecordSink<string[]>;
  /** Line after the last record, and csv-parse's count of skipped (empty) lines then. */
  private nextLine: number;
  private skipped = 0;
  /** How many lines csv-parse counted too many so far. */
  private overcount = 0;
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

  private readonly push = (record: string[]): void => {
    const info = this.api.info;
    const end = this.offset + info.bytes;
    const skipped = info.empty_lines + info.comment_lines;
    const line = this.nextLine + skipped - this.skipped;
    this.skipped = skipped;
    let endLine = this.line0 - 1 + info.lines - this.overcount;
    if (endLine > line) {
      const crlf = countCrlf(record);
      this.overcount += crlf;
      endLine -= crlf;
    }
    this.nextLine = endLine + 1;
    this.lastEnd = end;
    this.sink.add(record, line, end, this.nextLine);
  };

  write(chunk: Buffer, sink: RecordSink<string[]>): void {
    this.sink = sink;
    this.fed += chunk.length;
    const err = this.api.parse(chunk, false, this.push, noop);
    if (err !== undefined) throw this.fatal(err);
    // Checked per chunk rather than per byte (csv-parse's max_record_size), which is slower.
    if (this.maxRecordSize > 0 && this.fed - this.lastEnd > this.maxRecordSize) throw this.fatal(TOO_LONG);
  }

  end(sink: RecordSink<string[]>): void {
    this.sink = sink;
    const err = this.api.parse(undefined, true, this.push, noop);
    if (err !== undefined) throw this.fatal(err);
  }

  private fatal(err: unknown): Error {
    const info = this.api.info;
    return fatalError(this.file, this.nextLine + info.empty_lines + info.comment_lines - this.skipped, err, this.maxRecordSize);
  }
}

function countCrlf(fields: string[]): number {
  let n = 0;
  for (const field of fields) {
    for (let i = field.indexOf('\r\n'); i >= 0; i = field.indexOf('\r\n', i + 2)) n++;
  }
  return n;
}

/** A one-byte character other than a line end. */
const isPlainByte = (c: string | null): c is string => c !== null && c.length === 1 && c.charCodeAt(0) < 0x80 && c !== '\r' && c !== '\n';

/**
 * Cuts a delimited file into records (arrays of fields, a header like any record), with their
 * line numbers and end offsets; the parsing behind {@link csvReader}. A malformed quote or an
 * unterminated one, or a record over `maxRecordSize`, throw UnreadableFileError naming the file
 * and the line where the record starts. Throws a UsageError for bad options. `parseAll` has
 * csv-parse parse every record, whatever the syntax (to compare, in tests).
 */
export function csvSplitter(file: string, syntax: CsvSyntaxOptions = {}, parseAll = false): SplitterFactory<string[]> {
  const maxRecordSize = syntax.maxRecordSize ?? 16 * 1024 * 1024;
  const recordDelimiters = [syntax.recordDelimiter ?? ['\r\n', '\n']].flat();
  const delimiter = syntax.delimiter ?? ',';
  const quote = syntax.quote === false ? null : (syntax.quote ?? '"');
  const escape = syntax.escape ?? quote;
  const skipEmpty = syntax.skipEmptyLines ?? true;
  const options: ParserOptions = {
    delimiter,
    record_delimiter: recordDelimiters,
    quote,
    escape,
    bom: true,
    encoding: 'utf8',
    relax_column_count: true,
    relax_quotes: syntax.relaxQuotes ?? false,
    trim: syntax.trim ?? false,
    skip_empty_lines: skipEmpty,
  };
  createApi(options); // validates the options now rather than on open
  const lineEnds = [...new Set(recordDelimiters)].sort().join('|');
  const fast =
    !parseAll &&
    isPlainByte(delimiter) &&
    (quote === null || (isPlainByte(quote) && quote !== delimiter && escape === quote)) &&
    !options.relax_quotes &&
    !options.trim &&
    (lineEnds === '\n' || lineEnds === '\n|\r\n');
  if (!fast) return (offset, line) => new CsvParseSplitter(file, options, offset, line, maxRecordSize);
  // The fast splitter removes a byte order mark itself, and csv-parse sees only records.
  const recordOptions: ParserOptions = { ...options, bom: false };
  const fastSyntax: FastSyntax = { delimiter, quote: quote === null ? -1 : quote.charCodeAt(0), quoteChar: quote ?? '', crlf: lineEnds !== '\n', skipEmpty };
  return (offset, line) => new FastCsvSplitter(file, recordOptions, fastSyntax, offset, line, maxRecordSize);
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
export function csvReader<T = Record<string, string>, H extends string = string, C extends string = string>(options: CsvReaderOptions<T, H, C>): FileItemReader<T> {
  requireFileOptions('csvReader', options);
  const { path, columns, expectHeader, map } = options;
  const header = options.header ?? columns === undefined;
  if (!header && columns === undefined) throw new UsageError(`csvReader(${path}): give the column names (columns) when the file has no header`);
  if (expectHeader !== undefined && !header) throw new UsageError(`csvReader(${path}): expectHeader needs header: true`);
  const splitter = csvSplitter(path, options);
  let names: readonly string[] = header ? [] : columns!;

  return fileRecordReader<string[], T>('csvReader', options, {
    splitter,
    async prepare(fromStart) {
      if (!header) return undefined;
      const source = fromStart(splitter);
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
      const fields = source.value;
      const n = names.length;
      if (fields.length !== n) throw new RecordError(`expected ${n} fields, found ${fields.length}`);
      const record: Record<string, string> = {};
      for (let i = 0; i < n; i++) record[names[i]] = fields[i];
      // Its keys are the columns given, else the header's (which expectHeader, if given, checked).
      return map ? map(record as Record<CsvRecordKeys<H, C>, string>, source.line) : (record as T);
    },
  });
}

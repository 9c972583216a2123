/**
 * The machinery shared by the file readers (CSV, fixed-width, JSON Lines): opening the file,
 * reading it in chunks from a byte offset, cutting the chunks into records with a format-specific
 * {@link Splitter}, UTF-8 validation, line numbers, and the restart position kept in the step's
 * ExecutionContext.
 *
 * Records are buffered one chunk at a time, so `read()` returns a plain value while the buffer
 * holds one and a Promise only when it has to read the next chunk.
 */
import { readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { ItemStreamReader, ReadProgress } from '../core/items.ts';
import type { ExecutionContext } from '../core/model.ts';
import { ItemParseError, NightshiftError, UsageError } from '../core/errors.ts';
import { Utf8Checker } from './utf8.ts';

/** Receives the complete records a splitter finds. */
export interface RecordSink<R> {
  /**
   * @param value the parsed record
   * @param line 1-based line on which the record starts
   * @param end absolute byte offset just after the record (and its line terminator)
   * @param nextLine line number of the byte at `end`
   */
  add(value: R, line: number, end: number, nextLine: number): void;
}

/** Cuts a byte stream that starts at a record boundary into records. */
export interface Splitter<R> {
  /** Parses a chunk, adding the complete records to the sink; throws on unrecoverable input. */
  write(chunk: Buffer, sink: RecordSink<R>): void;
  /** End of input: adds the last record, if any. */
  end(sink: RecordSink<R>): void;
}

/** Creates a splitter for the part of a file that starts at byte `offset`, on line `line`. */
export type SplitterFactory<R> = (offset: number, line: number) => Splitter<R>;

/**
 * Malformed input the reader cannot resynchronise after (an unterminated quote, a record over
 * the size limit): reading ends. It is a UsageError, not an ItemParseError, so it is never
 * skipped: the step fails and the file must be fixed.
 */
export class UnreadableFileError extends UsageError {
  override readonly name: string = 'UnreadableFileError';
  constructor(
    message: string,
    /** The file that cannot be read on. */
    readonly file: string,
    /** The 1-based line where reading stopped. */
    readonly line: number,
  ) {
    super(message);
  }
}

/**
 * Thrown by a format's `decode` for a bad record; the reader turns it into an ItemParseError that
 * names the file and line and carries the raw record. The record is consumed: the next `read()`
 * returns the following one.
 */
export class RecordError extends Error {}

/** Formats an error message that names the file and the line. */
export function at(file: string, line: number, problem: string): string {
  return `${file}, line ${line}: ${problem}`;
}

const MAX_RAW = 64 * 1024;

/**
 * A cursor over the records of a file, from a record boundary. `advance()` moves to the next
 * record and exposes it in the public fields.
 */
export class RecordSource<R> implements RecordSink<R> {
  /** The current record (valid after `advance()` returned true). */
  value!: R;
  /** Line on which the current record starts. */
  line = 0;
  /** Byte range of the current record. Before the first record, `end` is the start offset. */
  start: number;
  end: number;
  /** Line number at `end`: where reading resumes after the current record. */
  nextLine: number;
  /** Whether the current record contains bytes that are not valid UTF-8. */
  badEncoding = false;

  private readonly values: R[] = [];
  private readonly lines: number[] = [];
  private readonly ends: number[] = [];
  private readonly nextLines: number[] = [];
  private head = 0;
  private readPos: number;
  private eof = false;
  private pendingError: unknown = undefined;
  private readonly utf8 = new Utf8Checker();
  private readonly bad: number[] = [];
  private badHead = 0;
  private nextBad = Infinity;
  private prefetch: Promise<Buffer> | undefined;

  constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly splitter: Splitter<R>,
    offset: number,
    line: number,
    private readonly chunkSize: number,
  ) {
    this.readPos = this.start = this.end = offset;
    this.nextLine = line;
  }

  add(value: R, line: number, end: number, nextLine: number): void {
    this.values.push(value);
    this.lines.push(line);
    this.ends.push(end);
    this.nextLines.push(nextLine);
  }

  /** Moves to the next record: true if there is one, false at the end, a Promise if it must read. */
  advance(): boolean | Promise<boolean> {
    const i = this.head;
    if (i < this.values.length) {
      this.head = i + 1;
      const end = this.ends[i];
      this.value = this.values[i];
      this.line = this.lines[i];
      this.start = this.end;
      this.end = end;
      this.nextLine = this.nextLines[i];
      if (end > this.nextBad) this.markBad(end);
      else this.badEncoding = false;
      return true;
    }
    this.values.length = this.lines.length = this.ends.length = this.nextLines.length = 0;
    this.head = 0;
    if (this.eof) {
      if (this.pendingError !== undefined) throw this.pendingError;
      return false;
    }
    return this.fill();
  }

  /** The bytes of the current record as text (line terminators around it removed). */
  rawText(): string {
    const length = Math.min(this.end - this.start, MAX_RAW);
    const buf = Buffer.alloc(length);
    const n = length > 0 ? readSync(this.handle.fd, buf, 0, length, this.start) : 0;
    return buf.toString('utf8', 0, n).replace(/^[\r\n]+/, '').replace(/\r?\n$|\r$/, '');
  }

  private markBad(end: number): void {
    this.badEncoding = true;
    while (this.badHead < this.bad.length && this.bad[this.badHead] < end) this.badHead++;
    if (this.badHead === this.bad.length) {
      this.bad.length = this.badHead = 0;
      this.nextBad = Infinity;
    } else {
      this.nextBad = this.bad[this.badHead];
    }
  }

  private async fill(): Promise<boolean> {
    while (this.values.length === 0 && !this.eof) {
      const chunk = await (this.prefetch ?? this.fetch());
      this.prefetch = undefined;
      const pos = this.readPos;
      this.readPos += chunk.length;
      // Read ahead while this chunk is parsed and consumed. Only after a full chunk: a short read
      // means the end of the file, and the next read must start where this one ended.
      if (chunk.length === this.chunkSize) this.prefetch = this.fetch();
      try {
        if (chunk.length === 0) {
          this.eof = true;
          this.utf8.end(this.bad);
          this.splitter.end(this);
        } else {
          this.utf8.check(chunk, pos, this.bad);
          this.splitter.write(chunk, this);
        }
      } catch (err) {
        // Records parsed before the error are still delivered; the error comes after them.
        this.pendingError = err;
        this.eof = true;
      }
      if (this.badHead < this.bad.length) this.nextBad = this.bad[this.badHead];
    }
    return this.advance();
  }

  /** Reads the chunk at `readPos` into a new buffer (the splitter may keep parts of it). */
  private fetch(): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(this.chunkSize);
    const read = this.handle.read(buf, 0, this.chunkSize, this.readPos).then(({ bytesRead }) => (bytesRead < buf.length ? buf.subarray(0, bytesRead) : buf));
    read.catch(() => {}); // a read-ahead may be abandoned; its error is seen when it is awaited
    return read;
  }
}

/** Opens a file for reading, with a UsageError naming the path when it cannot. */
export async function openInput(path: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  let stats: Stats;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be opened (${code ?? String(err)})`;
    throw new UsageError(`input file ${path} ${why}`, { cause: err });
  }
  try {
    stats = await handle.stat();
  } catch (err) {
    await handle.close();
    throw err;
  }
  if (!stats.isFile()) {
    await handle.close();
    throw new UsageError(`input file ${path} is not a regular file`);
  }
  return { handle, size: stats.size };
}

/** Where records start, in bytes and lines. */
export interface Position {
  offset: number;
  line: number;
}

/** What distinguishes one file reader from another. */
export interface RecordFormat<R, T> {
  /** Creates the splitter for the records. */
  splitter: SplitterFactory<R>;
  /**
   * Called on open, before the first read. `fromStart` opens a cursor at the start of the file
   * (e.g. to read a header, also on a restart). On a first run, the position returned (e.g. after
   * a header) is where reading starts; on a restart it is ignored.
   */
  prepare?(fromStart: <X>(splitter: SplitterFactory<X>) => RecordSource<X>, restarting: boolean): Promise<Position | undefined>;
  /** Turns the current record of `source` into an item; throws RecordError for a bad record. */
  decode(source: RecordSource<R>): T;
}

/** Options common to the file readers. */
export interface FileReaderOptions {
  /** The file to read. */
  path: string;
  /**
   * Prefix of the keys this reader keeps in the step's ExecutionContext (`<name>.offset`,
   * `<name>.line`). Defaults to `<kind>:<path>`; set it when the path may change between runs.
   */
  name?: string | undefined;
  /** Bytes read at a time. Default 64 KiB. */
  chunkSize?: number | undefined;
}

/** A restartable file reader. */
export interface FileItemReader<T> extends ItemStreamReader<T> {
  /**
   * 1-based line on which the record last returned by `read()`, or rejected by it with an
   * ItemParseError, starts (0 before the first read).
   */
  readonly lastLine: number;
  /** Opens the file and moves to the byte offset saved in `context` (the start on a first run). */
  open(context: ExecutionContext): Promise<void>;
  /** The next record, or `undefined` at the end of the file; a bad record throws an ItemParseError naming its line. */
  read(): T | undefined | Promise<T | undefined>;
  /** Saves the byte offset and line after the records read so far. */
  update(context: ExecutionContext): void;
  /** Closes the file. */
  close(): Promise<void>;
  /** Bytes: the position in the file (all of it once the end is read) of the file's size. */
  progress(): ReadProgress | undefined;
}

class FileRecordReader<R, T> implements FileItemReader<T> {
  lastLine = 0;
  private handle: FileHandle | undefined;
  private source: RecordSource<R> | undefined;
  /** The file's size when opened, and whether reading reached its end. */
  private size = 0;
  private exhausted = false;
  private readonly offsetKey: string;
  private readonly lineKey: string;
  private readonly chunkSize: number;
  private readonly path: string;

  constructor(
    kind: string,
    options: FileReaderOptions,
    private readonly format: RecordFormat<R, T>,
  ) {
    this.path = options.path;
    const name = options.name ?? `${kind}:${options.path}`;
    this.offsetKey = `${name}.offset`;
    this.lineKey = `${name}.line`;
    this.chunkSize = options.chunkSize ?? 64 * 1024;
    if (!(this.chunkSize >= 16)) throw new UsageError(`chunkSize must be at least 16, got ${this.chunkSize}`);
  }

  async open(context: ExecutionContext): Promise<void> {
    if (this.handle !== undefined) await this.close();
    const savedOffset = context[this.offsetKey];
    const savedLine = context[this.lineKey];
    const restarting = savedOffset !== undefined;
    if (restarting && !(Number.isSafeInteger(savedOffset) && Number.isSafeInteger(savedLine) && (savedOffset as number) >= 0)) {
      throw new UsageError(`bad restart position for ${this.path} in the step context: ${JSON.stringify({ offset: savedOffset, line: savedLine })}`);
    }
    const { handle, size } = await openInput(this.path);
    try {
      const fromStart = <X>(splitter: SplitterFactory<X>) => new RecordSource<X>(this.path, handle, splitter(0, 1), 0, 1, this.chunkSize);
      const first = this.format.prepare ? await this.format.prepare(fromStart, restarting) : undefined;
      let start: Position = first ?? { offset: 0, line: 1 };
      if (restarting) {
        start = { offset: savedOffset as number, line: savedLine as number };
        if (start.offset > size) {
          throw new UsageError(`cannot restart reading ${this.path} at byte ${start.offset}: the file has only ${size} bytes (was it replaced?)`);
        }
      }
      this.source = new RecordSource(this.path, handle, this.format.splitter(start.offset, start.line), start.offset, start.line, this.chunkSize);
      this.handle = handle;
      this.size = size;
      this.exhausted = false;
      this.lastLine = 0;
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  read(): T | undefined | Promise<T | undefined> {
    const source = this.source;
    if (source === undefined) throw new NightshiftError(`reader for ${this.path} read before open() or after close()`);
    const more = source.advance();
    if (more === true) return this.emit(source);
    if (more === false) return this.end();
    return more.then((ok) => (ok ? this.emit(source) : this.end()));
  }

  private end(): undefined {
    this.exhausted = true;
    return undefined;
  }

  private emit(source: RecordSource<R>): T {
    this.lastLine = source.line;
    if (source.badEncoding) throw this.parseError(source, 'invalid UTF-8 byte sequence');
    try {
      return this.format.decode(source);
    } catch (err) {
      if (err instanceof RecordError) throw this.parseError(source, err.message);
      throw err;
    }
  }

  private parseError(source: RecordSource<R>, problem: string): ItemParseError {
    return new ItemParseError(at(this.path, source.line, problem), this.path, source.line, source.rawText());
  }

  update(context: ExecutionContext): void {
    const source = this.source;
    if (source === undefined) return;
    context[this.offsetKey] = source.end;
    context[this.lineKey] = source.nextLine;
  }

  progress(): ReadProgress | undefined {
    const source = this.source;
    if (source === undefined) return undefined;
    // Blank lines after the last record are read too: at the end, all of the file is done.
    return { unit: 'bytes', done: this.exhausted ? Math.max(this.size, source.end) : source.end, total: this.size };
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = this.source = undefined;
    if (handle !== undefined) await handle.close();
  }
}

/** Builds a restartable file reader from a record format. */
export function fileRecordReader<R, T>(kind: string, options: FileReaderOptions, format: RecordFormat<R, T>): FileItemReader<T> {
  return new FileRecordReader(kind, options, format);
}

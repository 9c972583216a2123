/**
 * Restartable line writers: plain lines, CSV and JSON Lines.
 *
 * Each chunk's lines are written (positional writes, so they are in the OS once `write` resolves)
 * before the chunk commits; `update(ctx)` records the byte offset reached. On a restart, `open`
 * truncates the file back to the offset committed last, which drops whatever a failed chunk
 * wrote after it: every item ends up in the file exactly once.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { ChunkContext, ItemStreamWriter } from '../core/items.ts';
import type { ExecutionContext } from '../core/model.ts';
import { NightshiftError, UsageError } from '../core/errors.ts';
import { requireFileOptions } from './file-options.ts';

/** Options common to the file writers. */
export interface FileWriterBaseOptions {
  /** The file to write. A first run creates or truncates it. */
  path: string;
  /**
   * Key under which the committed byte offset is kept in the step's ExecutionContext. Defaults
   * to `fileWriter:<path>`; set it when the path may change between runs.
   */
  name?: string | undefined;
  /** Written as the first line on a first run. */
  header?: string | undefined;
  /** Written as the last line by `close()` (also when the step failed; a restart removes it). */
  footer?: string | (() => string) | undefined;
  /** Line separator. Default `\n`. */
  lineSeparator?: string | undefined;
  /** `fdatasync` after each chunk's write, before the chunk commits. Default false. */
  fsync?: boolean | undefined;
}

/** Options of {@link fileWriter}. */
export interface FileWriterOptions<T> extends FileWriterBaseOptions {
  /** Formats an item as one line (without the separator). */
  format: (item: T) => string;
}

/** A restartable file writer. */
export interface FileItemWriter<T> extends ItemStreamWriter<T> {
  /** The file written. */
  readonly path: string;
  /** The ExecutionContext key of the committed offset. */
  readonly name: string;
  /** Opens the file and truncates it back to the offset committed in `context` (drops what an uncommitted attempt wrote). */
  open(context: ExecutionContext): Promise<void>;
  /** Appends the chunk's items, after dropping the bytes of an earlier attempt at a chunk that did not commit. */
  write(items: T[], chunk?: ChunkContext): Promise<void>;
  /** Saves the file's offset after this chunk's bytes, which commits with the chunk. */
  update(context: ExecutionContext): void;
  /** Writes the footer, if any, and closes the file. */
  close(): Promise<void>;
}

class FileWriter<T> implements FileItemWriter<T> {
  readonly path: string;
  readonly name: string;
  private handle: FileHandle | undefined;
  private position = 0;
  /** The offset the last committed chunk reached. */
  private committedPosition = 0;
  /** The chunk transaction the bytes past committedPosition belong to. */
  private pendingChunk: ChunkContext | undefined;
  private readonly separator: string;

  constructor(private readonly options: FileWriterOptions<T>) {
    this.path = options.path;
    this.name = options.name ?? `fileWriter:${options.path}`;
    this.separator = options.lineSeparator ?? '\n';
  }

  async open(context: ExecutionContext): Promise<void> {
    if (this.handle !== undefined) {
      await this.handle.close(); // reopened: no footer
      this.handle = undefined;
    }
    const saved = context[this.name];
    if (saved !== undefined) {
      if (!(Number.isSafeInteger(saved) && (saved as number) >= 0)) {
        throw new UsageError(`bad restart offset for ${this.path} in the step context: ${JSON.stringify(saved)}`);
      }
      const handle = await openOutput(this.path, 'r+', 'cannot restart writing');
      try {
        const { size } = await handle.stat();
        if (size < (saved as number)) {
          throw new UsageError(`cannot restart writing ${this.path} at byte ${saved as number}: the file has only ${size} bytes (was it replaced?)`);
        }
        await handle.truncate(saved as number);
      } catch (err) {
        await handle.close();
        throw err;
      }
      this.handle = handle;
      this.position = saved as number;
      this.committedPosition = this.position;
    } else {
      this.handle = await openOutput(this.path, 'w', 'cannot write');
      this.position = 0;
      if (this.options.header !== undefined) await this.append(this.options.header + this.separator);
      this.committedPosition = this.position;
    }
  }

  async write(items: T[], chunk?: ChunkContext): Promise<void> {
    // Bytes of an attempt that never committed (its transaction rolled back, and the chunk is
    // being retried or scanned in a new transaction) are dropped before writing again.
    if (this.position > this.committedPosition && chunk !== this.pendingChunk) {
      await this.file().truncate(this.committedPosition);
      this.position = this.committedPosition;
    }
    this.pendingChunk = chunk;
    if (items.length === 0) return;
    const { format } = this.options;
    const sep = this.separator;
    let text = '';
    for (const item of items) text += format(item) + sep;
    await this.append(text);
    if (this.options.fsync) await this.file().datasync();
  }

  update(context: ExecutionContext): void {
    if (this.handle !== undefined) context[this.name] = this.position;
  }

  afterCommit(): void {
    this.committedPosition = this.position;
    this.pendingChunk = undefined;
  }

  async close(): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) return;
    try {
      const { footer } = this.options;
      if (footer !== undefined) {
        await this.append((typeof footer === 'function' ? footer() : footer) + this.separator);
        if (this.options.fsync) await handle.datasync();
      }
    } finally {
      this.handle = undefined;
      await handle.close();
    }
  }

  private file(): FileHandle {
    if (this.handle === undefined) throw new NightshiftError(`writer for ${this.path} used before open() or after close()`);
    return this.handle;
  }

  private async append(text: string): Promise<void> {
    const handle = this.file();
    const buf = Buffer.from(text, 'utf8');
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await handle.write(buf, done, buf.length - done, this.position + done);
      done += bytesWritten;
    }
    this.position += done;
  }
}

async function openOutput(path: string, flags: 'r+' | 'w', what: string): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? (flags === 'r+' ? 'the file is missing' : 'its directory does not exist') : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
    throw new UsageError(`${what} ${path}: ${why}`, { cause: err });
  }
}

/**
 * A restartable writer of one line per item, formatted by `format`. On a first run (no offset in
 * the context) it creates or truncates the file and writes the header; on a restart it truncates
 * the file to the committed offset and appends from there.
 */
export function fileWriter<T>(options: FileWriterOptions<T>): FileItemWriter<T> {
  requireFileOptions('fileWriter', options);
  return new FileWriter(options);
}

/** A CSV column: a property name, or a header and a function computing the value. */
export type CsvColumn<T> = (keyof T & string) | {
  /** The column's header. */
  header: string;
  /** The column's value for an item. */
  value: (item: T) => unknown;
};

/** Options of {@link csvWriter}. */
export interface CsvWriterOptions<T> extends Omit<FileWriterBaseOptions, 'header'> {
  /** The columns, in order: the header row and each item's values. */
  columns: CsvColumn<T>[];
  /** Write a header line with the column names. Default true. */
  header?: boolean | undefined;
  /** Default `,`. */
  delimiter?: string | undefined;
  /** Default `"`; a quote in a value is doubled. */
  quote?: string | undefined;
  /** Quote every field, not only those that need it. Default false. */
  quoteAll?: boolean | undefined;
}

/**
 * A restartable CSV writer (RFC 4180 quoting: a field with the delimiter, a quote, CR or LF is
 * quoted, quotes doubled). null/undefined are written empty, Dates as ISO strings, other objects
 * as JSON.
 */
export function csvWriter<T>(options: CsvWriterOptions<T>): FileItemWriter<T> {
  requireFileOptions('csvWriter', options);
  const delimiter = options.delimiter ?? ',';
  const quote = options.quote ?? '"';
  const quoteAll = options.quoteAll ?? false;
  const field = (value: unknown): string => csvField(value, delimiter, quote, quoteAll);
  const getters = options.columns.map((c) => (typeof c === 'string' ? (item: T) => item[c] : c.value));
  const names = options.columns.map((c) => (typeof c === 'string' ? c : c.header));
  return fileWriter<T>({
    ...options,
    header: options.header === false ? undefined : names.map(field).join(delimiter),
    format: (item) => {
      let line = '';
      for (let i = 0; i < getters.length; i++) line += (i === 0 ? '' : delimiter) + field(getters[i](item));
      return line;
    },
  });
}

/** Formats one CSV field. */
export function csvField(value: unknown, delimiter = ',', quote = '"', quoteAll = false): string {
  const s =
    value === null || value === undefined
      ? ''
      : typeof value === 'string'
        ? value
        : value instanceof Date
          ? value.toISOString()
          : typeof value === 'object'
            ? JSON.stringify(value)
            : String(value);
  if (quoteAll || s.includes(delimiter) || s.includes(quote) || s.includes('\n') || s.includes('\r')) {
    return quote + s.replaceAll(quote, quote + quote) + quote;
  }
  return s;
}

/** Options of {@link jsonlWriter}. */
export interface JsonlWriterOptions<T> extends FileWriterBaseOptions {
  /** What to serialise for an item. Default: the item. */
  map?: ((item: T) => unknown) | undefined;
}

/** A restartable JSON Lines writer: one `JSON.stringify`-ed value per line. */
export function jsonlWriter<T>(options: JsonlWriterOptions<T>): FileItemWriter<T> {
  requireFileOptions('jsonlWriter', options);
  const map = options.map;
  return fileWriter<T>({ ...options, format: (item) => JSON.stringify(map ? map(item) : item) ?? 'null' });
}

/**
 * Line-oriented file reading, shared by the fixed-width and JSON Lines readers: a splitter that
 * cuts the input on `\n` (a `\r` before it is dropped), and a reader built on it.
 */
import { UnreadableFileError, at, fileRecordReader, type FileItemReader, type FileReaderOptions, type RecordSink, type Splitter, type SplitterFactory } from './record-source.ts';

/** Options common to the line-oriented readers. */
export interface LineReaderOptions extends FileReaderOptions {
  /** Lines to skip at the start of the file on a first run (headers). Default 0. */
  linesToSkip?: number | undefined;
  /** Skip empty and blank (spaces/tabs only) lines. Default true. */
  skipBlankLines?: boolean | undefined;
  /** A longer line is an unrecoverable error. Default 16 MiB (in bytes). */
  maxLineLength?: number | undefined;
}

const NL = 10;
const CR = 13;

function isBlank(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const b = buf[i];
    if (b !== 32 && b !== 9 && b !== CR) return false;
  }
  return true;
}

class LineSplitter implements Splitter<string> {
  /**
   * The start of a line not yet ended, as the chunks it came in: joined once, when its newline
   * (or the end of the file) arrives, so that a long line costs time linear in its length.
   */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** The file offset of the pending line's first byte (or of the next byte, with none pending). */
  private restStart: number;
  /** At the start of the file, where a UTF-8 byte order mark is dropped. */
  private atFileStart: boolean;

  constructor(
    private readonly file: string,
    offset: number,
    private line: number,
    private readonly skipBlank: boolean,
    private readonly maxLength: number,
  ) {
    this.restStart = offset;
    this.atFileStart = offset === 0;
  }

  write(chunk: Buffer, sink: RecordSink<string>): void {
    if (this.atFileStart) {
      this.atFileStart = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
        chunk = chunk.subarray(3);
        this.restStart += 3;
      }
    }
    let s = 0;
    let nl = chunk.indexOf(NL, 0);
    if (this.pendingLength > 0) {
      if (nl < 0) {
        this.hold(chunk);
        return;
      }
      // The pending line ends in this chunk: one join of its pieces.
      const head = this.pendingLength;
      const buf = Buffer.concat([...this.pending, chunk.subarray(0, nl + 1)], head + nl + 1);
      this.pending = [];
      this.pendingLength = 0;
      this.emit(buf, 0, head + nl, this.restStart + head + nl + 1, sink);
      this.restStart += head;
      s = nl + 1;
      nl = chunk.indexOf(NL, s);
    }
    const base = this.restStart;
    for (; nl >= 0; nl = chunk.indexOf(NL, s)) {
      this.emit(chunk, s, nl, base + nl + 1, sink);
      s = nl + 1;
    }
    this.restStart = base + s;
    if (s < chunk.length) this.hold(chunk.subarray(s));
  }

  end(sink: RecordSink<string>): void {
    if (this.pendingLength === 0) return;
    const rest = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLength);
    this.pending = [];
    this.pendingLength = 0;
    this.emit(rest, 0, rest.length, this.restStart + rest.length, sink);
  }

  /** Keeps a piece of the line not yet ended. */
  private hold(piece: Buffer): void {
    this.pending.push(piece);
    this.pendingLength += piece.length;
    if (this.pendingLength > this.maxLength) this.tooLong();
  }

  private emit(buf: Buffer, s: number, e: number, end: number, sink: RecordSink<string>): void {
    const line = this.line++;
    if (e - s > this.maxLength) this.tooLong();
    if (e > s && buf[e - 1] === CR) e--;
    if (this.skipBlank && (e === s || ((buf[s] === 32 || buf[s] === 9) && isBlank(buf, s, e)))) return;
    sink.add(buf.toString('utf8', s, e), line, end, this.line);
  }

  private tooLong(): never {
    throw new UnreadableFileError(at(this.file, this.line, `line longer than maxLineLength (${this.maxLength} bytes)`), this.file, this.line);
  }
}

/** A splitter factory that cuts a file into lines. */
export function lineSplitter(file: string, options: Pick<LineReaderOptions, 'skipBlankLines' | 'maxLineLength'> = {}): SplitterFactory<string> {
  const skipBlank = options.skipBlankLines ?? true;
  const maxLength = options.maxLineLength ?? 16 * 1024 * 1024;
  return (offset, line) => new LineSplitter(file, offset, line, skipBlank, maxLength);
}

/**
 * A restartable reader of a line-oriented file, turning each line into an item with `parse`
 * (which throws RecordError for a bad line).
 */
export function lineReader<T>(kind: string, options: LineReaderOptions, parse: (line: string, lineNumber: number) => T): FileItemReader<T> {
  const linesToSkip = options.linesToSkip ?? 0;
  const splitter = lineSplitter(options.path, options);
  return fileRecordReader<string, T>(kind, options, {
    splitter,
    async prepare(fromStart, restarting) {
      if (restarting || linesToSkip === 0) return undefined;
      // Skip physical lines, blank or not: cut the header lines with a splitter that keeps blanks.
      const source = fromStart(lineSplitter(options.path, { ...options, skipBlankLines: false }));
      for (let i = 0; i < linesToSkip && (await source.advance()); i++);
      return { offset: source.end, line: source.nextLine };
    },
    decode: (source) => parse(source.value, source.line),
  });
}

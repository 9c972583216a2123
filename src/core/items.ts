import type { ExecutionContext } from './model.ts';
import type { Tx } from './database.ts';

/**
 * How far a reader is through its input, as it reports it (see {@link ItemStreamReader.progress}).
 */
export interface ReadProgress {
  /** What `done` and `total` count: items, or bytes of the input (a file). */
  readonly unit: 'items' | 'bytes';
  /**
   * How much of the input lies before the reader's position (after a restart, including what
   * earlier executions read). Required for bytes; for items it may be left out, and the engine
   * then counts the items read (and read errors skipped).
   */
  readonly done?: number;
  /** How much there is in all, when known. */
  readonly total?: number;
}

/**
 * A reader with an explicit lifecycle. `read` returns `undefined` at the end of input.
 * `open` restores the position from the step's ExecutionContext on restart; `update` saves the
 * position into it just before each commit.
 */
export interface ItemStreamReader<T> {
  /** Before the first read: restore the position saved in `context` (empty on a first run). */
  open?(context: ExecutionContext): void | Promise<void>;
  /** The next item, or `undefined` at the end of input. */
  read(): T | undefined | Promise<T | undefined>;
  /** Save the position after the items read so far into `context`, which commits with the chunk. */
  update?(context: ExecutionContext): void;
  /** After the step's last chunk, or when it fails: release files, cursors and connections. */
  close?(): void | Promise<void>;
  /**
   * Optional: how far the reader is, and how much it expects in all. Called after `open` and
   * right after each `update` (so `done` matches the position saved); it must be cheap. The
   * engine saves it with each commit in the step's ExecutionContext (`ns.progress`), where
   * progress displays read it.
   */
  progress?(): ReadProgress | undefined;
}

/**
 * What a chunk step reads from: an object reader, or any (async) iterable. Iterables are made
 * restartable by the engine, which skips the items already committed.
 */
export type ItemReader<T> = ItemStreamReader<T> | AsyncIterable<T> | Iterable<T>;

/** Transforms an item; returning `undefined` filters it out. */
export type ItemProcessor<I, O> = (item: I) => O | undefined | Promise<O | undefined>;

/** What a writer gets with each chunk. */
export interface ChunkContext {
  /**
   * The chunk's transaction in the job repository's database. Whatever the writer does through
   * it commits atomically with the step's checkpoint, so each item is written exactly once.
   */
  readonly tx: Tx;
  /** The step's ExecutionContext, as it will be committed with this chunk. */
  readonly context: ExecutionContext;
  /** The running job execution's id. */
  readonly jobExecutionId: number;
  /** The running step execution's id. */
  readonly stepExecutionId: number;
}

/** A writer with an explicit lifecycle. `update` records restart state (e.g. a byte offset). */
export interface ItemStreamWriter<T> {
  /** Before the first chunk: prepare the target (create a table, reopen a file at its committed offset from `context`). */
  open?(context: ExecutionContext): void | Promise<void>;
  /** Writes one chunk's items; what it does through `chunk.tx` commits with the checkpoint. */
  write(items: T[], chunk: ChunkContext): void | Promise<void>;
  /** Save restart state (e.g. a byte offset) into `context` just before each commit. */
  update?(context: ExecutionContext): void;
  /** Called after the chunk's transaction committed (e.g. to flush a file). */
  afterCommit?(context: ExecutionContext): void | Promise<void>;
  /** After the step's last chunk, or when it fails. */
  close?(): void | Promise<void>;
}

/** A writer object or a plain function. */
export type ItemWriter<T> = ItemStreamWriter<T> | ((items: T[], chunk: ChunkContext) => void | Promise<void>);

export function isStreamReader<T>(r: ItemReader<T>): r is ItemStreamReader<T> {
  return typeof (r as ItemStreamReader<T>).read === 'function';
}

export function toStreamWriter<T>(w: ItemWriter<T>): ItemStreamWriter<T> {
  return typeof w === 'function' ? { write: w } : w;
}

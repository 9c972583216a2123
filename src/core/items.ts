import type { ExecutionContext } from './model.ts';
import type { Tx } from './database.ts';

/**
 * A reader with an explicit lifecycle. `read` returns `undefined` at the end of input.
 * `open` restores the position from the step's ExecutionContext on restart; `update` saves the
 * position into it just before each commit.
 */
export interface ItemStreamReader<T> {
  open?(context: ExecutionContext): void | Promise<void>;
  read(): T | undefined | Promise<T | undefined>;
  update?(context: ExecutionContext): void;
  close?(): void | Promise<void>;
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
  readonly jobExecutionId: number;
  readonly stepExecutionId: number;
}

/** A writer with an explicit lifecycle. `update` records restart state (e.g. a byte offset). */
export interface ItemStreamWriter<T> {
  open?(context: ExecutionContext): void | Promise<void>;
  write(items: T[], chunk: ChunkContext): void | Promise<void>;
  update?(context: ExecutionContext): void;
  /** Called after the chunk's transaction committed (e.g. to flush a file). */
  afterCommit?(context: ExecutionContext): void | Promise<void>;
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

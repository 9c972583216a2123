import { isStreamReader, type ItemReader, type ItemStreamReader } from '../core/items.ts';
import type { ExecutionContext } from '../core/model.ts';
import { PROGRESS_KEY } from '../core/progress.ts';
import { reportedProgress } from './progress.ts';

const POSITION = 'ns.iterable.position';

/**
 * Gives every reader the object lifecycle. An (async) iterable becomes restartable by
 * counting the items it yielded: the count is saved with each commit, and a restart skips
 * that many items before reading on. A reader that reports how far it is has that saved with
 * its position (see progress.ts); an iterable reports its count (of an array's length).
 */
export function adaptReader<T>(reader: ItemReader<T>): Required<ItemStreamReader<T>> {
  if (isStreamReader(reader)) {
    const progress = reader.progress ? () => reader.progress?.() : () => undefined;
    return {
      open: (ctx) => reader.open?.(ctx),
      read: () => reader.read(),
      update: reader.progress
        ? (ctx) => {
            reader.update?.(ctx);
            const own = reportedProgress(reader);
            if (own) ctx[PROGRESS_KEY] = own;
          }
        : (ctx) => reader.update?.(ctx),
      close: () => reader.close?.(),
      progress,
    };
  }
  const asyncIt = (reader as AsyncIterable<T>)[Symbol.asyncIterator];
  const syncIt = (reader as Iterable<T>)[Symbol.iterator];
  if (!asyncIt && !syncIt) throw new TypeError('a reader must be an iterable, an async iterable, or have read()');
  let position = 0;
  const total = Array.isArray(reader) ? reader.length : undefined;
  const progress = () => ({ unit: 'items' as const, done: position, total });
  const update = (ctx: ExecutionContext) => {
    ctx[POSITION] = position;
    ctx[PROGRESS_KEY] = { unit: 'items', done: position, total: total ?? null };
  };
  if (syncIt) {
    const it = syncIt.call(reader);
    const read = (): T | undefined => {
      const r = it.next();
      if (r.done) return undefined;
      position++;
      return r.value;
    };
    return {
      open(ctx: ExecutionContext) {
        const skip = Number(ctx[POSITION] ?? 0);
        while (position < skip && read() !== undefined);
      },
      read,
      update,
      close: () => void it.return?.(),
      progress,
    };
  }
  const it = asyncIt.call(reader);
  const read = async (): Promise<T | undefined> => {
    const r = await it.next();
    if (r.done) return undefined;
    position++;
    return r.value;
  };
  return {
    async open(ctx: ExecutionContext) {
      const skip = Number(ctx[POSITION] ?? 0);
      while (position < skip && (await read()) !== undefined);
    },
    read,
    update,
    close: async () => void (await it.return?.()),
    progress,
  };
}

export function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

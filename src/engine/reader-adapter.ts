import { isStreamReader, type ItemReader, type ItemStreamReader } from '../core/items.ts';
import type { ExecutionContext } from '../core/model.ts';

const POSITION = 'ns.iterable.position';

/**
 * Gives every reader the object lifecycle. An (async) iterable becomes restartable by
 * counting the items it yielded: the count is saved with each commit, and a restart skips
 * that many items before reading on.
 */
export function adaptReader<T>(reader: ItemReader<T>): Required<ItemStreamReader<T>> {
  if (isStreamReader(reader)) {
    return {
      open: (ctx) => reader.open?.(ctx),
      read: () => reader.read(),
      update: (ctx) => reader.update?.(ctx),
      close: () => reader.close?.(),
    };
  }
  const asyncIt = (reader as AsyncIterable<T>)[Symbol.asyncIterator];
  const syncIt = (reader as Iterable<T>)[Symbol.iterator];
  if (!asyncIt && !syncIt) throw new TypeError('a reader must be an iterable, an async iterable, or have read()');
  let position = 0;
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
      update: (ctx) => void (ctx[POSITION] = position),
      close: () => void it.return?.(),
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
    update: (ctx) => void (ctx[POSITION] = position),
    close: async () => void (await it.return?.()),
  };
}

export function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

import { toStreamWriter, type ChunkContext, type ItemStreamWriter, type ItemWriter } from '../core/items.ts';
import type { ExecutionContext } from '../core/model.ts';
import { NightshiftError } from '../core/errors.ts';

/** Runs every lifecycle call on each writer, in order. */
function delegating<T>(writers: ItemStreamWriter<T>[], write: (items: T[], chunk: ChunkContext) => Promise<void>): ItemStreamWriter<T> {
  return {
    async open(context: ExecutionContext) {
      for (const w of writers) await w.open?.(context);
    },
    write,
    update(context: ExecutionContext) {
      for (const w of writers) w.update?.(context);
    },
    async afterCommit(context: ExecutionContext) {
      for (const w of writers) await w.afterCommit?.(context);
    },
    async close() {
      // Close them all, even when one fails; then report the first failure.
      let failure: { error: unknown } | undefined;
      for (const w of writers) {
        try {
          await w.close?.();
        } catch (error) {
          failure ??= { error };
        }
      }
      if (failure) throw failure.error;
    },
  };
}

/**
 * A writer that gives every chunk to each of `writers`, in order, and passes every lifecycle call
 * (open, update, afterCommit, close) to each of them.
 */
export function compositeWriter<T>(...writers: ItemWriter<T>[]): ItemStreamWriter<T> {
  const all = writers.map((w) => toStreamWriter(w));
  return delegating(all, async (items, chunk) => {
    for (const w of all) await w.write(items, chunk);
  });
}

/**
 * A writer that routes each item to the writer named by `classify(item)`. Each writer's `write` is
 * called once per chunk with its items (in chunk order; writers in declaration order), and not at all when it has none; the
 * lifecycle calls go to every writer. An unknown key fails the chunk.
 */
export function classifierWriter<T, K extends string>(classify: (item: T) => K, writers: Record<K, ItemWriter<T>>): ItemStreamWriter<T> {
  const keys = Object.keys(writers) as K[];
  const byKey = new Map<K, ItemStreamWriter<T>>(keys.map((k) => [k, toStreamWriter(writers[k])]));
  return delegating([...byKey.values()], async (items, chunk) => {
    const shares = new Map<K, T[]>();
    for (const item of items) {
      const key = classify(item);
      if (!byKey.has(key)) throw new NightshiftError(`classifierWriter: no writer for key ${JSON.stringify(key)} (known: ${keys.join(', ')})`);
      const share = shares.get(key);
      if (share === undefined) shares.set(key, [item]);
      else share.push(item);
    }
    for (const [key, writer] of byKey) {
      const share = shares.get(key);
      if (share !== undefined) await writer.write(share, chunk);
    }
  });
}

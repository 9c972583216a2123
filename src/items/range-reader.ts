import type { ItemStreamReader } from '../core/items.ts';

/**
 * Reads the integers `from..to` (inclusive). Its position is the next number, so a restart
 * continues right after the last committed one without re-reading. It reports its progress:
 * the numbers read of the range's size.
 */
export function rangeReader(from: number, to: number): ItemStreamReader<number> {
  let next = from;
  return {
    open(ctx) {
      if (typeof ctx['range.next'] === 'number') next = ctx['range.next'];
    },
    read: () => (next <= to ? next++ : undefined),
    update(ctx) {
      ctx['range.next'] = next;
    },
    progress: () => ({ unit: 'items', done: Math.max(0, Math.min(next, to + 1) - from), total: Math.max(0, to - from + 1) }),
  };
}

import type { ItemStreamReader } from '../core/items.ts';

/**
 * Reads the integers `from..to` (inclusive). Its position is the next number, so a restart
 * continues right after the last committed one without re-reading.
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
  };
}

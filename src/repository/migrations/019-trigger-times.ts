import type { Dialect } from '../tx.ts';
import { types } from './types.ts';

/**
 * Version 19: one-shot triggers and bounds. `once_at` is a one-shot trigger's only fire time;
 * `start_at` and `end_at` bound a cron or interval trigger's fire times (inclusive). All are epoch
 * milliseconds, nullable, so code of version 18 still reads and inserts rows (it leaves them null).
 */
export function triggerTimesSchema(d: Dialect): string[] {
  const { big } = types(d);
  return ['once_at', 'start_at', 'end_at'].map((c) => `ALTER TABLE ns_trigger ADD COLUMN ${c} ${big}`);
}

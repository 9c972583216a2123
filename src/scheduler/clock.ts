import { performance } from 'node:perf_hooks';
import type { SqlClient } from '../repository/tx.ts';
import { SCHED_SQL } from './sql.ts';

/**
 * This process's estimate of the database's clock, used only to decide when to wake up: every
 * decision about time (is a trigger due, is it a misfire) is taken by the database itself. The
 * estimate is an offset from the monotonic clock (`performance.now()`), so a node whose wall
 * clock is wrong, or jumps, still wakes up on time by the database's clock.
 */
export interface DbClock {
  /** Estimated database time now, in epoch milliseconds. */
  now(): number;
  /** Re-measures the offset (the best of a few round trips). */
  sync(): Promise<void>;
  /** Round trip of the best sample of the last sync, in ms: the estimate is good to about half of it. */
  readonly rttMs: number;
}

export function createDbClock(db: SqlClient, samples = 5): DbClock {
  let offset = 0;
  let rtt = Infinity;
  return {
    now: () => performance.now() + offset,
    get rttMs() {
      return rtt;
    },
    async sync() {
      let best = Infinity;
      let bestOffset = offset;
      for (let i = 0; i < samples; i++) {
        const t0 = performance.now();
        const rows = await db.query<{ now: number | string }>(SCHED_SQL.dbNow);
        const t1 = performance.now();
        // The database read its clock somewhere in the round trip: assume the middle.
        if (t1 - t0 < best) {
          best = t1 - t0;
          bestOffset = Number(rows[0].now) - (t0 + t1) / 2;
        }
      }
      offset = bestOffset;
      rtt = best;
    },
  };
}

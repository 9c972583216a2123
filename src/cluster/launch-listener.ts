import pg from 'pg';
import type { Logger } from '../core/logger.ts';
import { partitionEvents } from '../engine/partition-worker.ts';
import type { Database } from '../repository/database.ts';
import { parsePgUrl, pgClientConfig } from '../repository/postgres.ts';

/**
 * Listens for launch notifications (and partition endings, which wake waiting managers) on a dedicated PostgreSQL connection and calls `wake` for
 * each, reconnecting with backoff when the connection drops. Polling stays the safety net.
 */
export function listenForLaunches(db: Database, wake: () => void, log: Logger): { close(): Promise<void> } {
  if (db.dialect !== 'postgres') return { close: async () => undefined };
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 100;
  let timer: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ ...pgClientConfig(parsePgUrl(db.connectUrl)), application_name: 'nightshift-listen' });
    c.on('notification', (n) => {
      if (n.channel === 'ns_partition') partitionEvents.emit('ended', Number(n.payload));
      else wake();
    });
    c.on('error', (err) => {
      log.warn({ err: err.message }, 'launch listener connection lost; reconnecting');
      retry(c);
    });
    try {
      await c.connect();
      await c.query('LISTEN ns_launch');
      await c.query('LISTEN ns_partition');
      client = c;
      delay = 100;
      wake(); // catch up on anything submitted while disconnected
    } catch {
      retry(c);
    }
  };
  const retry = (c: pg.Client) => {
    void c.end().catch(() => undefined);
    if (client === c) client = undefined;
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay);
    delay = Math.min(delay * 2, 5000);
  };
  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await client?.end().catch(() => undefined);
    },
  };
}

import pg from 'pg';
import type { Logger } from '../core/logger.ts';
import type { Database } from '../repository/database.ts';
import { parsePgUrl, pgClientConfig } from '../repository/postgres.ts';

/**
 * Listens on a PostgreSQL notification channel with a dedicated connection and calls `onNotify`
 * for each notification (and after every reconnect, to catch up), reconnecting with backoff.
 * On SQLite it does nothing: polling is the mechanism there.
 */
export function listenOn(db: Database, channel: string, onNotify: () => void, log: Logger): { close(): Promise<void> } {
  if (db.dialect !== 'postgres') return { close: async () => undefined };
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 100;
  let timer: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ ...pgClientConfig(parsePgUrl(db.connectUrl)), application_name: `nightshift-${channel}` });
    c.on('notification', () => onNotify());
    c.on('error', (err) => {
      log.warn({ err: err.message, channel }, 'notification listener connection lost; reconnecting');
      retry(c);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (closed) {
        await c.end().catch(() => undefined);
        return;
      }
      client = c;
      delay = 100;
      onNotify();
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

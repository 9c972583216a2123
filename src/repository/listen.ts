import type pg from 'pg';
import { loadPg } from './drivers.ts';
import type { Logger } from '../core/logger.ts';
import type { Database } from './database.ts';
import { parsePgUrl, pgClientConfig } from './postgres.ts';

export interface Listener {
  /** A notification on one of the channels. */
  onNotify(channel: string, payload: string | undefined): void;
  /** After every (re)connect: catch up on anything sent while disconnected. */
  onConnect?(): void;
}

/**
 * Listens on PostgreSQL notification channels with a dedicated connection, reconnecting with
 * backoff when it drops. On SQLite it does nothing: polling is the mechanism there.
 */
export function listenOn(db: Database, channels: string[], listener: Listener, log: Logger): { close(): Promise<void> } {
  if (db.dialect !== 'postgres') return { close: async () => undefined };
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 100;
  let timer: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (closed) return;
    const c = new (loadPg().Client)({ ...pgClientConfig(parsePgUrl(db.connectUrl)), application_name: `nightshift-${channels[0]}` });
    c.on('notification', (n) => listener.onNotify(n.channel, n.payload));
    c.on('error', (err) => {
      log.warn({ err: err.message, channels }, 'notification listener connection lost; reconnecting');
      retry(c);
    });
    try {
      await c.connect();
      for (const channel of channels) await c.query(`LISTEN ${channel}`);
      if (closed) {
        await c.end().catch(() => undefined);
        return;
      }
      client = c;
      delay = 100;
      listener.onConnect?.();
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

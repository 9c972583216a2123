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

interface Subscription {
  channels: readonly string[];
  listener: Listener;
  log: Logger;
}

/** One LISTEN connection, shared by every subscriber of this process on the same database. */
interface Shared {
  subscribers: Set<Subscription>;
  /** The channels LISTENed to on the current connection. */
  listening: Set<string>;
  client: pg.Client | undefined;
  /** Subscribers added while connecting, to tell once the connection is up. */
  connecting: boolean;
  closed: boolean;
  timer: NodeJS.Timeout | undefined;
  delay: number;
}

const shared = new Map<string, Shared>();

/**
 * Listens on PostgreSQL notification channels, reconnecting with backoff when the connection
 * drops. Every subscriber of this process on the same database shares one dedicated connection
 * (the connection budget counts one LISTEN connection per process). On SQLite it does nothing:
 * polling is the mechanism there.
 */
export function listenOn(db: Database, channels: string[], listener: Listener, log: Logger): { close(): Promise<void> } {
  if (db.dialect !== 'postgres') return { close: async () => undefined };
  const key = db.connectUrl;
  let s = shared.get(key);
  if (!s) {
    s = { subscribers: new Set(), listening: new Set(), client: undefined, connecting: false, closed: false, timer: undefined, delay: 100 };
    shared.set(key, s);
    const mine = s;
    void connect(key, mine);
  }
  const sub: Subscription = { channels, listener, log };
  s.subscribers.add(sub);
  if (s.client && !s.connecting) void addChannels(s, s.client, sub);
  const mine = s;
  return {
    async close() {
      mine.subscribers.delete(sub);
      if (mine.subscribers.size > 0) return;
      mine.closed = true;
      if (shared.get(key) === mine) shared.delete(key);
      clearTimeout(mine.timer);
      const c = mine.client;
      mine.client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

async function addChannels(s: Shared, c: pg.Client, sub: Subscription): Promise<void> {
  try {
    for (const channel of sub.channels) {
      if (s.listening.has(channel)) continue;
      await c.query(`LISTEN ${channel}`);
      s.listening.add(channel);
    }
    if (s.client === c) sub.listener.onConnect?.();
  } catch {
    // The connection broke: its 'error' handler reconnects, and the reconnect LISTENs to all.
  }
}

async function connect(key: string, s: Shared): Promise<void> {
  if (s.closed) return;
  const c = new (loadPg().Client)(pgClientConfig(parsePgUrl(key), {}, 'listen'));
  c.on('notification', (n) => {
    for (const sub of s.subscribers) if (sub.channels.includes(n.channel)) sub.listener.onNotify(n.channel, n.payload);
  });
  c.on('error', (err) => {
    for (const sub of firstOf(s.subscribers)) sub.log.warn({ err: err.message, channels: [...s.listening] }, 'notification listener connection lost; reconnecting');
    retry(key, s, c);
  });
  s.connecting = true;
  try {
    await c.connect();
    const listening = new Set<string>();
    // Subscribers may come and go while this connects: LISTEN until every channel is covered.
    for (;;) {
      const missing = [...new Set([...s.subscribers].flatMap((sub) => sub.channels))].filter((ch) => !listening.has(ch));
      if (!missing.length) break;
      for (const channel of missing) {
        await c.query(`LISTEN ${channel}`);
        listening.add(channel);
      }
    }
    if (s.closed) {
      await c.end().catch(() => undefined);
      return;
    }
    s.client = c;
    s.listening = listening;
    s.delay = 100;
    s.connecting = false;
    for (const sub of [...s.subscribers]) sub.listener.onConnect?.();
  } catch {
    s.connecting = false;
    retry(key, s, c);
  }
}

function retry(key: string, s: Shared, c: pg.Client): void {
  void c.end().catch(() => undefined);
  if (s.client === c) {
    s.client = undefined;
    s.listening = new Set();
  }
  if (s.closed || s.timer) return;
  s.timer = setTimeout(() => {
    s.timer = undefined;
    void connect(key, s);
  }, s.delay);
  s.delay = Math.min(s.delay * 2, 5000);
}

function firstOf<T>(set: Set<T>): T[] {
  const first = set.values().next();
  return first.done ? [] : [first.value];
}

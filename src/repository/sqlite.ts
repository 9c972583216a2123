import BetterSqlite3 from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import type { Database } from './database.ts';
import type { SqlClient, Statement, Tx } from './tx.ts';

/** Rewrites `$n` placeholders to `?` and returns the parameter order they need. */
function translate(sql: string): { text: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { text, order };
}

const identity = new WeakSet<number[]>();
function isIdentity(order: number[]): boolean {
  if (identity.has(order)) return true;
  for (let i = 0; i < order.length; i++) if (order[i] !== i) return false;
  identity.add(order);
  return true;
}

function toSqlite(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value;
}

/** Opens a better-sqlite3 connection set up for the repository: WAL, busy timeout, ns_now(). */
export function openSqliteConnection(path: string): BetterSqlite3.Database {
  const full = path === ':memory:' ? path : resolve(path);
  if (full !== ':memory:') {
    const dir = dirname(full);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  }
  let db: BetterSqlite3.Database;
  try {
    db = new BetterSqlite3(full);
    db.pragma('journal_mode = WAL');
  } catch (err) {
    throw new UsageError(`cannot open SQLite database ${full}: ${(err as Error).message}`);
  }
  db.pragma('busy_timeout = 30000');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // One host, one clock: every process on this file shares it, so local time is safe here.
  db.function('ns_now', { deterministic: false }, () => Date.now());
  return db;
}

/** Serialises async work on one connection: a transaction must not interleave with other statements. */
function createMutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

// One queue per database file for the whole process: two Database objects on the same file
// must not interleave transactions on one thread (BEGIN IMMEDIATE would wait on itself).
const queues = new Map<string, ReturnType<typeof createMutex>>();

export function openSqlite(path: string): Database {
  const db = openSqliteConnection(path);
  const key = path === ':memory:' ? `:memory:${Math.random()}` : resolve(path);
  const cache = new Map<string, { stmt: BetterSqlite3.Statement; order: number[] }>();
  const prepare = (sql: string) => {
    let hit = cache.get(sql);
    if (!hit) {
      const { text, order } = translate(sql);
      hit = { stmt: db.prepare(text), order };
      cache.set(sql, hit);
    }
    return hit;
  };
  /**
   * Calls `run` with the parameters in placeholder order, as SQLite binds them. The common case
   * (placeholders in order, values SQLite takes as they are) passes them untouched; a value it
   * refuses (a boolean, a Date) fails the binding before anything runs, and is converted.
   */
  const bound = <T>(order: number[], params: readonly unknown[] = [], run: (values: unknown[]) => T): T => {
    if (order.length === params.length && isIdentity(order)) {
      try {
        return run(params as unknown[]);
      } catch (err) {
        if (!(err instanceof TypeError && /can only bind/.test(err.message))) throw err;
      }
    }
    return run(order.map((i) => toSqlite(params[i])));
  };

  const direct: SqlClient = {
    dialect: 'sqlite',
    sqlite: db,
    async query<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      const { stmt, order } = prepare(sql);
      if (stmt.reader) return bound(order, params, (values) => stmt.all(...values)) as R[];
      bound(order, params, (values) => stmt.run(...values));
      return [];
    },
    async execute(sql: string, params?: readonly unknown[]): Promise<number> {
      const { stmt, order } = prepare(sql);
      return bound(order, params, (values) => stmt.run(...values)).changes;
    },
    async exec(sql: string): Promise<void> {
      db.exec(sql);
    },
  };

  let exclusive = queues.get(key);
  if (!exclusive) queues.set(key, (exclusive = createMutex()));
  let closed = false;
  const transaction = <T>(fn: (tx: Tx) => Promise<T>): Promise<T> =>
    exclusive(async () => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(direct);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    });
  return {
    dialect: 'sqlite',
    url: `sqlite:${path}`,
    connectUrl: `sqlite:${path === ':memory:' ? path : resolve(path)}`,
    sqlite: db,
    query: (sql, params) => exclusive(() => direct.query(sql, params)),
    execute: (sql, params) => exclusive(() => direct.execute(sql, params)),
    exec: (sql) => exclusive(() => direct.exec(sql)),
    transaction,
    transactionEndingWith: <T, R>(fn: (tx: Tx) => Promise<{ value: T; last: Statement }>) =>
      transaction(async (tx) => {
        const { value, last } = await fn(tx);
        return { value, rows: await tx.query<R>(last.sql, last.params) };
      }),
    async close() {
      if (closed) return;
      closed = true;
      await exclusive(async () => db.close());
    },
  };
}

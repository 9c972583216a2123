import type BetterSqlite3 from 'better-sqlite3';
import { loadBetterSqlite3 } from './drivers.ts';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import type { DriverClient, DriverDatabase } from './driver-client.ts';
import type { Statement, Tx } from './tx.ts';

/** Rewrites `$n` placeholders to `?` and returns the parameter order they need. */
function translate(sql: string): { text: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { text, order };
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
    db = new (loadBetterSqlite3())(full);
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

// How many prepared statements a connection keeps; the recurring ones are prepared again at once.
const MAX_CACHED = 256;

/** A prepared statement with the order its `?` placeholders take the `$n` parameters in. */
interface Prepared {
  stmt: BetterSqlite3.Statement;
  order: number[];
  /** Placeholders appear as $1, $2, ... in order: parameters bind as they are. */
  inOrder: boolean;
}

// One queue per database file for the whole process: two Database objects on the same file
// must not interleave transactions on one thread (BEGIN IMMEDIATE would wait on itself).
const queues = new Map<string, ReturnType<typeof createMutex>>();

export function openSqlite(path: string): DriverDatabase {
  const db = openSqliteConnection(path);
  const key = path === ':memory:' ? `:memory:${Math.random()}` : resolve(path);
  const cache = new Map<string, Prepared>();
  const prepare = (sql: string): Prepared => {
    let hit = cache.get(sql);
    if (!hit) {
      const { text, order } = translate(sql);
      hit = { stmt: db.prepare(text), order, inOrder: order.every((n, i) => n === i) };
      // Texts that vary (an INSERT per row count) must not pile up over a node's lifetime.
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(sql, hit);
    }
    return hit;
  };
  /** The parameters in placeholder order, as SQLite binds them, with values it refuses converted. */
  const converted = ({ order }: Prepared, params: readonly unknown[]) => order.map((i) => toSqlite(params[i]));
  /**
   * Runs a statement: `stmt.all` for one that returns rows, else `stmt.run`. The common case
   * (placeholders in order, values SQLite takes as they are) binds the parameters untouched; a
   * value SQLite refuses (a boolean, a Date) fails the binding before anything runs, and the
   * statement runs again with it converted.
   */
  function run(p: Prepared, params: readonly unknown[] | undefined, rows: true): unknown[];
  function run(p: Prepared, params: readonly unknown[] | undefined, rows: false): BetterSqlite3.RunResult;
  function run(p: Prepared, params: readonly unknown[] = [], rows: boolean): unknown[] | BetterSqlite3.RunResult {
    if (p.inOrder && params.length === p.order.length) {
      try {
        return rows ? p.stmt.all(...params) : p.stmt.run(...params);
      } catch (err) {
        if (!(err instanceof TypeError && /can only bind/.test(err.message))) throw err;
      }
    }
    const values = converted(p, params);
    return rows ? p.stmt.all(...values) : p.stmt.run(...values);
  }
  const querySync = <R>(sql: string, params?: readonly unknown[]): R[] => {
    const p = prepare(sql);
    if (p.stmt.reader) return run(p, params, true) as R[];
    run(p, params, false);
    return [];
  };

  const direct: DriverClient = {
    dialect: 'sqlite',
    sqlite: db,
    async query<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      return querySync<R>(sql, params);
    },
    async execute(sql: string, params?: readonly unknown[]): Promise<number> {
      return run(prepare(sql), params, false).changes;
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
        return { value, rows: querySync<R>(last.sql, last.params) };
      }),
    async close() {
      if (closed) return;
      closed = true;
      await exclusive(async () => db.close());
    },
  };
}

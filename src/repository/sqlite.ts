import type BetterSqlite3 from 'better-sqlite3';
import { loadBetterSqlite3, sqliteBindingError } from './drivers.ts';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { RepositoryCorruptError, UsageError } from '../core/errors.ts';
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
  const size = full === ':memory:' ? 0 : fileSize(full);
  const Driver = loadBetterSqlite3();
  let db: BetterSqlite3.Database;
  try {
    db = new Driver(full);
    // Before anything could write to it (journal_mode writes the header).
    if (size > 0) checkIntact(db, full, size);
    db.pragma('journal_mode = WAL');
  } catch (err) {
    if (err instanceof RepositoryCorruptError) throw err;
    throw sqliteBindingError(err) ?? asCorrupt(err, full) ?? new UsageError(`cannot open SQLite database ${full}: ${(err as Error).message}`);
  }
  db.pragma('busy_timeout = 30000');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // One host, one clock: every process on this file shares it, so local time is safe here.
  db.function('ns_now', { deterministic: false }, () => Date.now());
  return db;
}

/** Files up to this size get a full `PRAGMA quick_check` at open (a few ms per MB); bigger ones a schema check. */
export const QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024;

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

const corruptMessage = (path: string, what: string) =>
  `the job repository ${path} is corrupt (${what}); nothing was read from or written to it: restore it from a backup, or move it away to start a new one`;

/** A RepositoryCorruptError for a driver error that says the file is damaged, else undefined. */
function asCorrupt(err: unknown, path: string): RepositoryCorruptError | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !/^SQLITE_(CORRUPT|NOTADB)/.test(code)) return undefined;
  return new RepositoryCorruptError(corruptMessage(path, `${code}: ${(err as Error).message}`), { cause: err });
}

/**
 * Reads the schema (which a damaged header or first page fails) and, for a file small enough that
 * it is cheap, runs `PRAGMA quick_check`: a damaged repository gives wrong answers (an execution
 * that "does not exist") and would take new runs, so it is refused at open.
 */
function checkIntact(db: BetterSqlite3.Database, path: string, size: number): void {
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  if (size > QUICK_CHECK_MAX_BYTES) return;
  const rows = db.pragma('quick_check(3)') as { quick_check: string }[];
  const problems = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
  if (problems.length) throw new RepositoryCorruptError(corruptMessage(path, `quick_check: ${problems.join('; ').slice(0, 300)}`));
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
  const where = path === ':memory:' ? path : resolve(path);
  /** Runs `fn`, turning a driver error that says the file is damaged into a RepositoryCorruptError. */
  const guarded = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw asCorrupt(err, where) ?? err;
    }
  };
  const transaction = <T>(fn: (tx: Tx) => Promise<T>): Promise<T> =>
    exclusive(() => guarded(async () => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(direct);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    }));
  return {
    dialect: 'sqlite',
    url: `sqlite:${path}`,
    connectUrl: `sqlite:${path === ':memory:' ? path : resolve(path)}`,
    sqlite: db,
    query: (sql, params) => exclusive(() => guarded(() => direct.query(sql, params))),
    execute: (sql, params) => exclusive(() => guarded(() => direct.execute(sql, params))),
    exec: (sql) => exclusive(() => guarded(() => direct.exec(sql))),
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

import type { ItemStreamReader, ReadProgress } from '../core/items.ts';
import type { ExecutionContext } from '../core/model.ts';
import type { Database } from '../repository/database.ts';
import { connectDedicated } from '../repository/postgres.ts';
import { openSqliteConnection } from '../repository/sqlite.ts';
import type { SqlClient } from '../repository/tx.ts';
import { namingSqlErrors } from './sql-error.ts';

/** What {@link pagingReader} reads: a query, its parameters, and the key it pages on. */
export interface PagingReaderOptions<T> {
  /** A connection to read with (e.g. the step context's `db`). */
  db: SqlClient;
  /**
   * A SELECT without ORDER BY/LIMIT; the reader adds `WHERE key > $n ORDER BY key LIMIT n`
   * (wrapping it as a subquery), so pages stay correct while rows are inserted elsewhere.
   */
  select: string;
  /** The values of the query's `$1`, `$2`, ... placeholders. */
  params?: readonly unknown[] | undefined;
  /** The unique, ordered column the pages are keyed on: a column (or alias) of `select`'s result. */
  key: string;
  /** Rows per page query (default 1000). */
  pageSize?: number | undefined;
  /**
   * Turns a row into an item (default: the row itself). The values are the driver's: on
   * PostgreSQL a BIGINT or NUMERIC column comes as a string (convert it here, `Number(row.id)`),
   * on SQLite an INTEGER as a number.
   */
  map?: ((row: Record<string, unknown>) => T) | undefined;
  /**
   * Count the query's rows once at open (`SELECT count(*)` over it), so that progress displays
   * show done of total. Default false: the count is a second pass over the query.
   */
  countTotal?: boolean | undefined;
}

/** The number of rows `select` returns, for a reader's expected total. */
async function countRows(db: SqlClient, select: string, params: readonly unknown[]): Promise<number> {
  const rows = await db.query<{ n: number | string | bigint }>(`SELECT count(*) AS n FROM (${select}) AS ns_count`, params);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Reads a query page by page with keyset pagination. The last key read is the restart
 * position, so a restart continues after the last committed row without re-reading.
 */
export function pagingReader<T = Record<string, unknown>>(options: PagingReaderOptions<T>): ItemStreamReader<T> {
  const pageSize = options.pageSize ?? 1000;
  const params = options.params ?? [];
  const sql = `SELECT * FROM (${options.select}) AS ns_page WHERE ${options.key} > $${params.length + 1} OR $${params.length + 1} IS NULL
    ORDER BY ${options.key} LIMIT ${pageSize}`;
  let page: Record<string, unknown>[] = [];
  let index = 0;
  let lastKey: unknown = null;
  let done = false;
  let total: number | undefined;
  const stateKey = 'paging.lastKey';
  return {
    async open(ctx: ExecutionContext) {
      lastKey = ctx[stateKey] ?? null;
      if (options.countTotal) total = await namingSqlErrors('pagingReader (countTotal)', options.select, () => countRows(options.db, options.select, params));
    },
    async read() {
      if (index >= page.length) {
        if (done) return undefined;
        page = await namingSqlErrors('pagingReader', options.select, () => options.db.query(sql, [...params, lastKey]));
        index = 0;
        if (page.length < pageSize) done = true;
        if (page.length === 0) return undefined;
      }
      const row = page[index++];
      lastKey = row[options.key];
      return options.map ? options.map(row) : (row as T);
    },
    update(ctx) {
      ctx[stateKey] = lastKey;
    },
    // Items: the engine counts them (this reader's position is a key, not a count).
    progress: (): ReadProgress => ({ unit: 'items', total }),
  };
}

/**
 * Reads a query in one pass, streaming rows over a connection of its own: a PostgreSQL
 * server-side cursor, or an SQLite statement iterator. The position is the number of rows
 * consumed; a restart skips that many rows (so the query must order its rows deterministically).
 */
export function cursorReader<T = Record<string, unknown>>(options: {
  /** The repository database (the step context's `db`); the reader opens its own connection to it. */
  db: Database;
  select: string;
  params?: readonly unknown[] | undefined;
  fetchSize?: number | undefined;
  map?: ((row: Record<string, unknown>) => T) | undefined;
  /** Count the query's rows once at open, for progress displays (see PagingReaderOptions). */
  countTotal?: boolean | undefined;
}): ItemStreamReader<T> {
  const fetchSize = options.fetchSize ?? 1000;
  const params = options.params ?? [];
  let position = 0;
  let buffer: Record<string, unknown>[] = [];
  let index = 0;
  let exhausted = false;
  let total: number | undefined;
  let fetchMore: () => Promise<Record<string, unknown>[]> = async () => [];
  let release: () => Promise<void> = async () => undefined;
  const stateKey = 'cursor.position';
  /** Opens the cursor at row `skip` (on SQLite a statement iterator, on PostgreSQL a server-side cursor). */
  const openCursor = async (skip: number) => {
    if (options.countTotal) total = await countRows(options.db, options.select, params);
    if (options.db.dialect === 'sqlite') {
      const conn = openSqliteConnection(options.db.connectUrl.slice('sqlite:'.length));
      let rows: IterableIterator<Record<string, unknown>> | undefined;
      try {
        rows = conn.prepare(options.select.replace(/\$\d+/g, '?')).iterate(...params) as IterableIterator<Record<string, unknown>>;
        for (let i = 0; i < skip && !rows.next().done; i++);
      } catch (err) {
        rows?.return?.();
        conn.close();
        throw err;
      }
      const open = rows;
      fetchMore = async () => {
        const out: Record<string, unknown>[] = [];
        while (out.length < fetchSize) {
          const r = open.next();
          if (r.done) break;
          out.push(r.value);
        }
        return out;
      };
      release = async () => {
        open.return?.();
        conn.close();
      };
    } else {
      // A session the server ends (pg_terminate_backend, a restart, a timeout) is an 'error'
      // event: unheard, it would crash the process. The statement running then rejects with
      // the same error, which fails (or retries) only this step.
      let lost: Error | undefined;
      const client = await connectDedicated(options.db.connectUrl, 'cursor', (err) => (lost ??= err));
      try {
        await client.query('BEGIN READ ONLY');
        await client.query(`DECLARE ns_cursor NO SCROLL CURSOR FOR ${options.select}`, params as unknown[]);
        if (skip > 0) await client.query(`MOVE FORWARD ${skip} FROM ns_cursor`);
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      fetchMore = async () => {
        try {
          return (await client.query(`FETCH ${fetchSize} FROM ns_cursor`)).rows;
        } catch (err) {
          // Name the cause the session ended with, not pg's "not queryable" that follows it.
          if (!lost) throw err;
          throw Object.assign(new Error(`its connection was lost: ${lost.message}`, { cause: lost }), { code: (lost as { code?: string }).code });
        }
      };
      release = async () => {
        await client.query('COMMIT').catch(() => undefined);
        await client.end().catch(() => undefined);
      };
    }
  };
  return {
    async open(ctx) {
      const skip = Number(ctx[stateKey] ?? 0);
      await namingSqlErrors('cursorReader', options.select, () => openCursor(skip));
      position = skip;
    },
    async read() {
      if (index >= buffer.length) {
        if (exhausted) return undefined;
        buffer = await namingSqlErrors('cursorReader', options.select, fetchMore);
        index = 0;
        if (buffer.length < fetchSize) exhausted = true;
        if (buffer.length === 0) return undefined;
      }
      position++;
      const row = buffer[index++];
      return options.map ? options.map(row) : (row as T);
    },
    update(ctx) {
      ctx[stateKey] = position;
    },
    progress: (): ReadProgress => ({ unit: 'items', done: position, total }),
    async close() {
      await release();
    },
  };
}

import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';

export type Dialect = 'sqlite' | 'postgres';

/**
 * A connection or transaction in the job repository's database, with one placeholder style
 * (`$1`, `$2`, ...) on both dialects.
 */
export interface SqlClient {
  readonly dialect: Dialect;
  /** Runs a statement and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs a statement and returns the number of rows it changed. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Runs a script of several statements without parameters (DDL). */
  exec(sql: string): Promise<void>;
  /** The native better-sqlite3 connection, on SQLite. */
  readonly sqlite?: BetterSqlite3.Database;
  /** The native pg client, on PostgreSQL (for COPY and cursors). */
  readonly pg?: pg.PoolClient | pg.Client;
}

/** A transaction: a SqlClient whose work commits or rolls back as one. */
export type Tx = SqlClient;

/** One statement and its parameters. */
export interface Statement {
  sql: string;
  params: readonly unknown[];
}

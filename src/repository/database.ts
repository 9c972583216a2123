import type { Dialect, SqlClient, Statement, Tx } from './tx.ts';

/**
 * A connection to the job repository's database, in one of two dialects. SQL text uses `$1`
 * placeholders and the function `ns_now()` (epoch milliseconds from the database's clock) on
 * both dialects, so the statements in sql.ts are shared.
 */
export interface Database extends SqlClient {
  readonly dialect: Dialect;
  /** A display form of the URL, without credentials. */
  readonly url: string;
  /** The URL to open another connection to the same database (e.g. from a worker thread). */
  readonly connectUrl: string;
  /**
   * Runs `fn` in a transaction. On SQLite transactions are serialised in this process and start
   * with BEGIN IMMEDIATE; on PostgreSQL each gets its own pooled connection.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * {@link transaction} whose last statement is the one `fn` returns, run just before COMMIT:
   * on PostgreSQL the two go in one round trip once that statement is kept prepared on the
   * connection (see prepared.ts). If the statement fails, nothing commits. Resolves with `fn`'s
   * value and the statement's rows.
   */
  transactionEndingWith<T, R>(fn: (tx: Tx) => Promise<{ value: T; last: Statement }>): Promise<{ value: T; rows: R[] }>;
  close(): Promise<void>;
}

export type { Dialect, SqlClient, Statement, Tx };

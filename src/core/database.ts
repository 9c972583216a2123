/** The job repository's SQL dialect. */
export type Dialect = 'sqlite' | 'postgres';

/**
 * A connection or transaction in the job repository's database, with one placeholder style
 * (`$1`, `$2`, ...) on both dialects.
 */
export interface SqlClient {
  /** Which SQL dialect the database speaks. */
  readonly dialect: Dialect;
  /** Runs a statement and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs a statement and returns the number of rows it changed. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Runs a script of several statements without parameters (DDL). */
  exec(sql: string): Promise<void>;
}

/** A transaction: a SqlClient whose work commits or rolls back as one. */
export type Tx = SqlClient;

/** One statement and its parameters. */
export interface Statement {
  /** The SQL text, with `$1` placeholders. */
  sql: string;
  /** The placeholders' values. */
  params: readonly unknown[];
}

/**
 * A connection to the job repository's database, in one of two dialects. SQL text uses `$1`
 * placeholders and the function `ns_now()` (epoch milliseconds from the database's clock) on
 * both dialects.
 */
export interface Database extends SqlClient {
  /** Which SQL dialect the database speaks. */
  readonly dialect: Dialect;
  /** A display form of the URL, without credentials. */
  readonly url: string;
  /** The URL to open another connection to the same database (e.g. from a worker thread). */
  readonly connectUrl: string;
  /** PostgreSQL: the schema the repository's tables are in (`?schema=`); undefined: the connection's default (public). */
  readonly schema?: string | undefined;
  /**
   * Runs `fn` in a transaction. On SQLite transactions are serialised in this process and start
   * with BEGIN IMMEDIATE; on PostgreSQL each gets its own pooled connection.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * {@link Database.transaction} whose last statement is the one `fn` returns, run just before
   * COMMIT: on PostgreSQL the two go in one round trip once that statement is kept prepared on
   * the connection. If the statement fails, nothing commits. Resolves with `fn`'s value and the
   * statement's rows.
   */
  transactionEndingWith<T, R>(fn: (tx: Tx) => Promise<{ value: T; last: Statement }>): Promise<{
    /** What `fn` returned as its value. */
    value: T;
    /** The rows of the last statement. */
    rows: R[];
  }>;
  /** Closes every connection (the pool on PostgreSQL). */
  close(): Promise<void>;
}

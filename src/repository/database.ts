// The database interface lives in core (users' steps see it); the repository implements it.
export type { Database, Dialect, SqlClient, Statement, Tx } from '../core/database.ts';

/** How `openDatabase` opens a PostgreSQL repository (SQLite ignores these). */
export interface PgOptions {
  /** Most connections the pool opens (default 10). */
  poolSize?: number | undefined;
  /** A pooled connection idle for this long is closed (default 10,000 ms). */
  idleTimeoutMs?: number | undefined;
  /**
   * Ends a session that sits idle inside a transaction for this long. Processes that own
   * executions set it from their lease, so that a paused owner cannot hold an execution's row
   * lock (and so block its takeover) for longer than that.
   */
  idleInTransactionMs?: number | undefined;
  /**
   * How long getting a connection retries, with backoff, while the server turns connections
   * away (`too many clients`, starting up or shutting down) or, once it was reached, cannot be
   * reached (refused, reset). Default 30 s; then the statement fails with the cause. Before the
   * first connection, a refused one fails at once (more likely a wrong URL than an outage),
   * unless the URL itself gives `?connect_retry_ms=`: then it is retried from the start.
   */
  connectRetryMs?: number | undefined;
}

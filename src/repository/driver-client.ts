import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import type { Database, SqlClient } from '../core/database.ts';

/**
 * A client as this layer's drivers make it: a {@link SqlClient} that also carries the native
 * connection under it. The native handles stay inside Nightshift: the public types name none
 * of the drivers' types.
 */
export interface DriverClient extends SqlClient {
  /** The native better-sqlite3 connection, on SQLite. */
  readonly sqlite?: BetterSqlite3.Database;
  /** The native pg client, on PostgreSQL (for COPY and cursors). */
  readonly pg?: pg.PoolClient | pg.Client;
}

/** A {@link Database} as this layer's drivers make it, with the native connection under it. */
export type DriverDatabase = Database & DriverClient;

/** The pg connection under a client this layer made on PostgreSQL; undefined on SQLite. */
export function nativePg(client: SqlClient): pg.PoolClient | pg.Client | undefined {
  return (client as DriverClient).pg;
}

/**
 * Statements of Nightshift's run in a transaction the application began on a PostgreSQL
 * connection of its own (graphile-worker's `add_job` in the caller's transaction): they take
 * effect, notifications included, only if that transaction commits. They run under a savepoint,
 * so a refused launch leaves the application's transaction as it was, and with the repository's
 * schema on the search path only while they run.
 */
import { UsageError } from '../core/errors.ts';
import type { SqlClient, Tx } from '../core/database.ts';
import { types } from './postgres.ts';

/**
 * A PostgreSQL connection of the application's (a `pg` Client or PoolClient) in a transaction it
 * began (`BEGIN`) and will end.
 */
export interface PgTransactionClient {
  /** Runs one statement (the `pg` client's own `query`, given a query config with Nightshift's type parsers). */
  query(config: {
    /** The statement. */
    text: string;
    /** Its parameters. */
    values?: unknown[] | undefined;
    /** How its columns are read (BIGINT ids and times as numbers). */
    types: { getTypeParser(oid: number, format?: 'text' | 'binary'): unknown };
  }): Promise<{
    /** The rows. */
    rows: unknown[];
    /** The rows changed. */
    rowCount: number | null;
  }>;
}

const SAVEPOINT = 'nightshift_launch';
/** SAVEPOINT outside a transaction block. */
const NO_TRANSACTION = '25P01';

/** Runs `fn` on `client`, in its open transaction, with `schema` first on the search path. */
export async function inForeignTransaction<T>(client: PgTransactionClient, schema: string | undefined, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (typeof client?.query !== 'function') {
    throw new UsageError('submitInTransaction needs a pg Client or PoolClient of yours, in a transaction you began (BEGIN) and will commit');
  }
  const run = (text: string, values?: readonly unknown[]) => client.query({ text, values: values as unknown[] | undefined, types });
  try {
    await run(`SAVEPOINT ${SAVEPOINT}`);
  } catch (err) {
    if ((err as { code?: string }).code === NO_TRANSACTION) {
      throw new UsageError('submitInTransaction needs the client in a transaction: BEGIN first; the submit takes effect when you COMMIT', { cause: err });
    }
    throw err;
  }
  try {
    let restore: string | undefined;
    if (schema) {
      const [row] = (await run(`SELECT current_setting('search_path') AS path, set_config('search_path', $1, true)`, [`"${schema}"`])).rows as { path: string }[];
      restore = row.path;
    }
    const tx: SqlClient = {
      dialect: 'postgres',
      query: async <R>(sql: string, params?: readonly unknown[]) => (await run(sql, params)).rows as R[],
      execute: async (sql, params) => (await run(sql, params)).rowCount ?? 0,
      exec: async (sql) => void (await run(sql)),
    };
    const result = await fn(tx);
    if (restore !== undefined) await run(`SELECT set_config('search_path', $1, true)`, [restore]);
    await run(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return result;
  } catch (err) {
    // Back to before the launch (the search path too); the application's transaction goes on.
    await run(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`).then(() => run(`RELEASE SAVEPOINT ${SAVEPOINT}`)).catch(() => undefined);
    throw err;
  }
}

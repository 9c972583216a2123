import type { SqlClient } from '../repository/tx.ts';

// What PostgreSQL raises when another session creates the same table between our
// `IF NOT EXISTS` check and our insert into the catalog: unique_violation (on pg_type),
// duplicate_table, duplicate_object ('type "x" already exists').
const CREATED_CONCURRENTLY = new Set(['23505', '42P07', '42710']);

/**
 * Runs a `CREATE TABLE IF NOT EXISTS` (or index) statement, tolerating the race where several
 * nodes or partitions create the same table at once on PostgreSQL.
 */
export async function ensureTable(db: SqlClient, ddl: string): Promise<void> {
  try {
    await db.exec(ddl);
  } catch (err) {
    if (!CREATED_CONCURRENTLY.has((err as { code?: string }).code ?? '')) throw err;
    // The other session has committed by now, so `IF NOT EXISTS` sees its table; anything that
    // merely shares the name (a type, a view) still fails here, with PostgreSQL's own message.
    await db.exec(ddl);
  }
}

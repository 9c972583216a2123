import type { SqlClient } from '../repository/tx.ts';

/**
 * Runs a `CREATE TABLE IF NOT EXISTS` (or index) statement, tolerating the race where several
 * nodes create the same table at once on PostgreSQL.
 */
export async function ensureTable(db: SqlClient, ddl: string): Promise<void> {
  try {
    await db.exec(ddl);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P07') throw err;
  }
}

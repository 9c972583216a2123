import type { Database } from '../core/database.ts';
import { openDatabase } from '../repository/open.ts';

/** The job repository an operator works on. */
export interface OperatorRepository {
  readonly db: Database;
  /** Closes the database if the operator opened it; one it was given stays open. */
  close(): Promise<void>;
}

/**
 * Opens the job repository an operator works on: the database its URL names (default
 * `sqlite:nightshift.db`), whose sessions may sit idle in a transaction for at most
 * `idleInTransactionMs` (PostgreSQL), or a Database the caller opened and keeps owning.
 */
export async function openOperatorRepository(db: string | Database | undefined, idleInTransactionMs: number): Promise<OperatorRepository> {
  if (typeof db === 'object') return { db, close: async () => undefined };
  const opened = await openDatabase(db, { idleInTransactionMs });
  return { db: opened, close: () => opened.close() };
}

import type { Database } from '../core/database.ts';
import type { Logger } from '../core/logger.ts';
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
 * `idleInTransactionMs` (PostgreSQL), or a Database the caller opened and keeps owning. A
 * migration that opening runs is logged on `logger`.
 */
export async function openOperatorRepository(db: string | Database | undefined, idleInTransactionMs: number, logger: Logger): Promise<OperatorRepository> {
  if (typeof db === 'object') return { db, close: async () => undefined };
  const opened = await openDatabase(db, { idleInTransactionMs, logger });
  return { db: opened, close: () => opened.close() };
}

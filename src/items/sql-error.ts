/**
 * Errors of the SQL readers and writers, named for the user: which reader or writer, which
 * statement, and what the database said about it beyond its first line.
 */

const NAMED = Symbol.for('nightshift.sqlErrorNamed');
const STATEMENT_SHOWN = 300;

/** A statement on one line, cut to a length that a step's exit description can hold. */
function oneLine(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > STATEMENT_SHOWN ? `${flat.slice(0, STATEMENT_SHOWN)}...` : flat;
}

/**
 * Prefixes a database error's message with where it happened (`pagingReader`, `sqlWriter into
 * orders`), adds PostgreSQL's detail and hint (`Key (id)=(7) already exists.`) and, when given,
 * the statement. The error itself is kept (its class, `code` and cause), so skip, retry and
 * noRollback rules match it as before; an error named once is not named again.
 */
export function nameSqlError(err: unknown, where: string, sql?: string): unknown {
  if (!(err instanceof Error) || (err as { [NAMED]?: true })[NAMED]) return err;
  const { detail, hint } = err as { detail?: unknown; hint?: unknown };
  const extra = [detail, hint].filter((s): s is string => typeof s === 'string' && s !== '');
  err.message = `${where}: ${err.message}${extra.length ? ` (${extra.join(' ')})` : ''}${sql ? ` in: ${oneLine(sql)}` : ''}`;
  Object.defineProperty(err, NAMED, { value: true });
  return err;
}

/** Runs `fn`, naming a database error it throws (see {@link nameSqlError}). */
export async function namingSqlErrors<T>(where: string, sql: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw nameSqlError(err, where, sql);
  }
}

/** PostgreSQL's SQLSTATE, and SQLite's extended codes, of a unique or primary key violation. */
const UNIQUE_CODES = new Set(['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

/**
 * True for a unique or primary key violation, on PostgreSQL and SQLite alike: an error matcher
 * for skip, retry and noRollback rules (Spring Batch's DuplicateKeyException).
 *
 * @example
 * skip: { on: [isUniqueViolation], limit: 10 } // a duplicate row is skipped; the rest of its chunk is written
 */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && UNIQUE_CODES.has(code);
}

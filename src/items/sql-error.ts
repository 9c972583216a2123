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

/** A database's error: PostgreSQL's five-character SQLSTATE, or SQLite's `SQLITE_...` code. */
function isDatabaseError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (/^[0-9A-Z]{5}$/.test(code) || code.startsWith('SQLITE_'));
}

/**
 * PostgreSQL's detail when it names a key (`Key (id)=(7) already exists.`, a unique or foreign
 * key violation). Other details can hold a whole row (`Failing row contains (...)`), which has
 * no place in an exit description that every console viewer reads.
 */
function keyDetail(err: Error): string | undefined {
  const { detail } = err as { detail?: unknown };
  return typeof detail === 'string' && detail.startsWith('Key (') ? detail : undefined;
}

/**
 * Prefixes a database error's message with where it happened (`pagingReader`, `sqlWriter into
 * orders`), adds PostgreSQL's detail when it names a key (`Key (id)=(7) already exists.`) and
 * its hint, and, when given, the statement. The error itself is kept (its class, `code` and
 * cause), so skip, retry and noRollback rules that match its class or code match as before; one
 * that matched its message's start must match the code instead (see {@link isUniqueViolation}).
 * Other errors (the user's own, a driver's timeout) are left as they are, as is one named once
 * already or one whose message cannot be changed.
 */
export function nameSqlError(err: unknown, where: string, sql?: string): unknown {
  if (!(err instanceof Error) || !isDatabaseError(err) || (err as { [NAMED]?: true })[NAMED]) return err;
  const { hint } = err as { hint?: unknown };
  const extra = [keyDetail(err), hint].filter((s): s is string => typeof s === 'string' && s !== '');
  try {
    err.message = `${where}: ${err.message}${extra.length ? ` (${extra.join(' ')})` : ''}${sql ? ` in: ${oneLine(sql)}` : ''}`;
    Object.defineProperty(err, NAMED, { value: true });
  } catch {
    // A frozen error, or one whose message is a getter: better unnamed than replaced.
  }
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

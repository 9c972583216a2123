/**
 * Whether an error means the database could not be reached or the connection broke (so the
 * statement's outcome may be unknown), rather than that the statement itself was wrong.
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  const code = e.code ?? '';
  // PostgreSQL: connection exceptions (08xxx), operator intervention (57P0x); Node sockets; SQLite lock waits.
  if (/^08/.test(code) || /^57P0[123]$/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'SQLITE_BUSY'].includes(code)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection error|terminating connection|Client was closed|not queryable/i.test(message);
}

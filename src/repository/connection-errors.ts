/**
 * Whether an error means the database could not be reached or the connection broke (so the
 * statement's outcome may be unknown), rather than that the statement itself was wrong.
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  if (!e) return false;
  // "cannot connect to ..." wraps the driver's error as its cause.
  if (e.cause !== undefined && e.cause !== err && isConnectionError(e.cause)) return true;
  const code = e.code ?? '';
  // PostgreSQL: connection exceptions (08xxx), operator intervention (57P0x); Node sockets; SQLite lock waits.
  if (/^08/.test(code) || /^57P0[123]$/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'SQLITE_BUSY'].includes(code)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection error|terminating connection|Client was closed|not queryable|database system is (shutting down|starting up)/i.test(message);
}

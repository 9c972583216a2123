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
  if (/^08/.test(code) || /^57P0[123]$/.test(code) || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'SQLITE_BUSY'].includes(code)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection error|terminating connection|Client was closed|not queryable|database system is (shutting down|starting up)|too many (clients|connections)/i.test(message);
}

/**
 * Whether the server turned a new connection away for want of capacity or because it is starting
 * or stopping (too_many_connections 53300, cannot_connect_now 57P03, admin_shutdown 57P01): it
 * may well accept the next attempt, whatever the URL.
 */
export function isCapacityError(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === '53300' || e.code === '57P03' || e.code === '57P01') return true;
  }
  return false;
}

/**
 * The cause of a connection failure, once: the innermost message with its SQLSTATE or socket
 * code, e.g. `sorry, too many clients already (53300)`.
 */
export function connectionErrorText(err: unknown): string {
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e?.cause && typeof e.cause === 'object' && depth < 5; depth++) e = e.cause as typeof e;
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  const code = typeof e?.code === 'string' && !message.includes(e.code) ? ` (${e.code})` : '';
  return `${message}${code}`;
}

/**
 * Runs `fn`, and while it fails with a connection error, tries again with backoff, for at most
 * `forMs`; then throws the last error.
 */
export async function retryingConnectionErrors<T>(fn: () => Promise<T>, forMs: number): Promise<T> {
  const giveUpAt = performance.now() + forMs;
  let delay = 100;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err) || performance.now() + delay > giveUpAt) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

import { UsageError } from '../core/errors.ts';

/** getaddrinfo's codes for a host name that does not resolve (ENOTFOUND) or could not be looked up now (EAI_AGAIN). */
const DNS_FAILURES = ['ENOTFOUND', 'EAI_AGAIN'];

/**
 * The repository could not get a connection to its database (`cannot connect to <url>: ...`),
 * its driver's error as the cause. A usage error: at start-up it is likelier a wrong URL.
 */
export class DatabaseUnreachableError extends UsageError {
  /** `'DatabaseUnreachableError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'DatabaseUnreachableError';
}

/**
 * Whether an error means the database could not be reached or the connection broke (so the
 * statement's outcome may be unknown), rather than that the statement itself was wrong.
 * A host name that does not resolve counts only when the repository's own connection attempt
 * failed on it (a {@link DatabaseUnreachableError}): the same error from a job's own call (a
 * mistyped webhook host) is the job's failure, not a database outage to wait out.
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  if (!e) return false;
  if (err instanceof DatabaseUnreachableError && isDnsFailure(e.cause)) return true;
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
 * Whether an error (or one of its causes) is a host name that does not resolve, yet or for now:
 * a container's service name before its container is up, a Kubernetes service without a ready
 * pod, a DNS server that does not answer.
 */
export function isDnsFailure(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && DNS_FAILURES.includes(e.code)) return true;
  }
  return false;
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
  let e = err as { code?: unknown; message?: unknown; cause?: unknown; hostname?: unknown } | undefined;
  for (let depth = 0; e?.cause && typeof e.cause === 'object' && depth < 5; depth++) e = e.cause as typeof e;
  // getaddrinfo's own words ("getaddrinfo ENOTFOUND db") do not say what is wrong.
  if (typeof e?.hostname === 'string' && e.code === 'ENOTFOUND') return `the host name ${JSON.stringify(e.hostname)} does not resolve (ENOTFOUND)`;
  if (typeof e?.hostname === 'string' && e.code === 'EAI_AGAIN') return `the host name ${JSON.stringify(e.hostname)} could not be looked up (temporary DNS failure, EAI_AGAIN)`;
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  const code = typeof e?.code === 'string' && !message.includes(e.code) ? ` (${e.code})` : '';
  return `${message}${code}`;
}

export interface RetryOptions {
  /** How long to keep trying, counted from the first attempt. */
  forMs: number;
  /** Whether a failure may pass if tried again. Others are thrown at once. */
  transient: (err: unknown) => boolean;
  /** The error to throw once the time is up (default: the last failure itself). */
  giveUp?: (err: unknown, waitedMs: number) => unknown;
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Runs `attempt`, and while it fails transiently, tries again with jittered exponential backoff
 * (so that processes turned away together do not all come back at once) until `forMs` have
 * passed since the first attempt. The last wait is cut to the time that is left, so the whole
 * window is used: giving up early because the next wait would overshoot would make a configured
 * retry time shorter than it says.
 */
export async function retrying<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const started = performance.now();
  let delay = options.firstDelayMs ?? 50;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      const waited = performance.now() - started;
      if (!options.transient(err) || waited >= options.forMs) throw options.giveUp ? options.giveUp(err, waited) : err;
      const wait = Math.min(delay * (0.5 + Math.random() / 2), options.forMs - waited);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(delay * 2, options.maxDelayMs ?? 2000);
    }
  }
}

/**
 * Runs `fn`, and while it fails with a connection error, tries again with backoff, for at most
 * `forMs`; then throws the last error.
 */
export function retryingConnectionErrors<T>(fn: () => Promise<T>, forMs: number): Promise<T> {
  return retrying(fn, { forMs, transient: isConnectionError, firstDelayMs: 100, maxDelayMs: 5000 });
}

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ClosedError, LaunchRefusedError, UnknownJobError, UsageError, errorMessage, isUserError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { isConnectionError } from '../repository/connection-errors.ts';
import { CronError } from '../scheduler/cron.ts';
import { redactUrls } from '../core/redact.ts';

/** An answer with a status and one line saying why (`{ "error": "..." }`). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (message: string) => new HttpError(404, message);
/** What the state of an execution, instance or node refuses. */
export const conflict = (message: string) => new HttpError(409, message);

/** The body of a 503: nothing about the database (its URL, the driver's words) reaches the client. */
export const UNAVAILABLE = 'the job repository is unavailable; try again later';

/**
 * Whether an error means the job repository cannot be used right now: its connection failed or
 * broke, or (SQLite) its file cannot be read or written.
 */
export function isRepositoryUnavailable(err: unknown): boolean {
  if (isConnectionError(err)) return true;
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && /^SQLITE_(IOERR|CANTOPEN|FULL|NOTADB|CORRUPT|READONLY)/.test(e.code)) return true;
  }
  return false;
}


/**
 * What the server log gets of an error: its type, message, code, cause and stack, with the
 * passwords of URLs hidden; never request headers (where tokens and cookies travel).
 */
export function describeError(err: unknown): Record<string, unknown> {
  const e = err as { code?: unknown; cause?: unknown; stack?: unknown } | undefined;
  const message = redactUrls(errorMessage(err));
  const cause = e?.cause as { message?: unknown; code?: unknown; name?: unknown } | undefined;
  const causeMessage = cause && redactUrls(errorMessage(cause));
  // Under pino's `err` key its error serializer reads this again: with no prototype it takes the
  // type from `name` (not "Object"), and the cause is not `cause`, which it would append to the
  // message and stack once more (a DatabaseUnreachableError's message quotes its cause already).
  return Object.assign(Object.create(null) as Record<string, unknown>, {
    name: err instanceof Error ? err.name : typeof err,
    type: err instanceof Error ? err.name : typeof err,
    message,
    ...(e?.code !== undefined ? { code: e.code } : {}),
    ...(cause && causeMessage && !message.includes(causeMessage)
      ? { causedBy: { message: causeMessage, ...(cause.code !== undefined ? { code: cause.code } : {}) } }
      : {}),
    ...(typeof e?.stack === 'string' ? { stack: redactUrls(e.stack) } : {}),
  });
}

/** The status an error answers with, and the one line the client sees. */
export function classify(err: unknown): { status: number; message: string; log?: 'warn' | 'error' } {
  if (err instanceof HttpError) return { status: err.statusCode, message: err.message };
  // Before user errors: "cannot connect to postgres://..." is a UsageError too.
  if (isRepositoryUnavailable(err)) return { status: 503, message: UNAVAILABLE, log: 'error' };
  if ((err as FastifyError | undefined)?.code === 'FST_ERR_HANDLER_TIMEOUT') return { status: 503, message: 'the server took too long to answer; try again later', log: 'warn' };
  // An operator closed under a server that embeds it: the server is going away, not the request wrong.
  if (err instanceof ClosedError) return { status: 503, message: 'the server is shutting down; try again later' };
  if (err instanceof LaunchRefusedError) return { status: 409, message: errorMessage(err) };
  if (err instanceof UnknownJobError) return { status: 404, message: errorMessage(err) };
  if (isUserError(err) || err instanceof CronError) return { status: 400, message: errorMessage(err) };
  // Fastify's own 4xx: a body too large, a bad content type, malformed JSON.
  const status = (err as FastifyError | undefined)?.statusCode;
  if (status !== undefined && status >= 400 && status < 500) return { status, message: fastifyMessage(err as FastifyError) };
  return { status: 500, message: 'internal error; the server log has the details', log: 'error' };
}

function fastifyMessage(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'the request body is too large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'requests with a body must have content-type application/json';
    default:
      return errorMessage(err);
  }
}

/** Fastify's error handler: one line for the client, the details in the server log. */
export function errorHandler(log: Logger) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { status, message, log: level } = classify(err);
    if (level) log[level]({ err: describeError(err), method: req.method, route: req.routeOptions.url ?? req.url.split('?')[0], status }, `HTTP ${req.method} ${req.url.split('?')[0]} answered ${status}`);
    if (status === 503) reply.header('retry-after', '5');
    return reply.code(status).send({ error: message });
  };
}

export { UsageError };

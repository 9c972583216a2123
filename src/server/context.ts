import type { FastifyReply } from 'fastify';
import type { Logger } from '../core/logger.ts';
import type { Nightshift } from '../operator.ts';
import type { ScheduleAdmin } from '../scheduler/triggers.ts';
import type { Authenticator } from './auth.ts';
import type { EventHub } from './events.ts';

/** What the API's routes share. */
export interface ApiContext {
  readonly ns: Nightshift;
  readonly schedules: ScheduleAdmin;
  readonly auth: Authenticator;
  readonly hub: EventHub;
  readonly log: Logger;
  /** The session cookie's Path: the mount path (see HttpApiOptions.mountPath). */
  readonly sessionPath: string;
  /** Whether the server is shutting down (readiness answers 503). */
  readonly stopping: () => boolean;
}

/**
 * Sets the paging headers of a list: `Link: <...>; rel="next"` (RFC 8288) and `X-Next-Cursor`,
 * when there is a next page. The list itself stays a plain JSON array (the CLI's shape). The link
 * is relative to the request (`<executions?limit=3&cursor=7>`), so that it stays right where an
 * application serves the API under a prefix of its own (`/batch/api/executions`), which this
 * server does not see.
 */
export function pageHeaders(reply: FastifyReply, url: string, nextCursor: number | null): void {
  if (nextCursor === null) return;
  const next = new URL(url, 'http://x');
  next.searchParams.set('cursor', String(nextCursor));
  reply.header('link', `<${next.pathname.slice(next.pathname.lastIndexOf('/') + 1)}${next.search}>; rel="next"`);
  reply.header('x-next-cursor', String(nextCursor));
}

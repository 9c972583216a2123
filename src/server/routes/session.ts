import type { FastifyInstance } from 'fastify';
import { listAudit } from '../../repository/audit.ts';
import { type ApiContext, pageHeaders } from '../context.ts';
import { SESSION_COOKIE } from '../guard.ts';
import { errors, ref } from '../schemas.ts';
import { auditJson, sessionJson } from '../views.ts';

export async function sessionRoutes(app: FastifyInstance, { ns, auth, sessionPath }: ApiContext) {
  app.post('/api/session', {
    config: { bearerOnly: true, audit: { action: 'login', target: () => null } },
    schema: {
      summary: 'Log in: exchange an API token for a session cookie',
      description:
        'Send the token as `Authorization: Bearer SECRET` (and an empty JSON body). The answer sets the session cookie ' +
        `\`${SESSION_COOKIE}\` (HttpOnly, SameSite=Strict, Secure over HTTPS), which the API then accepts instead of the header, ` +
        "until it expires (12 h by default) or the token is removed or changed. Every login is recorded in the audit log.",
      tags: ['session'],
      security: [{ bearer: [] }],
      response: { 200: ref('Session'), ...errors(401, 415) },
    },
  }, async (req, reply) => {
    const principal = req.principal!;
    if (!auth.enabled) return sessionJson(principal);
    const { value, expiresAt } = auth.createSession(principal);
    reply.setCookie(SESSION_COOKIE, value, {
      path: sessionPath,
      httpOnly: true,
      sameSite: 'strict',
      secure: req.protocol === 'https',
      maxAge: Math.floor(auth.sessionTtlMs / 1000),
    });
    return sessionJson({ ...principal, via: 'session', expiresAt });
  });

  app.get('/api/session', {
    schema: {
      summary: 'Who the request acts as: the token name and role',
      description: 'A console asks this to know whether to offer actions (role operator) or not (viewer).',
      tags: ['session'],
      response: { 200: ref('Session'), ...errors(401) },
    },
  }, async (req) => sessionJson(req.principal!));

  app.delete('/api/session', {
    config: { audit: { action: 'logout', target: () => null } },
    schema: {
      summary: 'Log out: delete the session cookie',
      tags: ['session'],
      response: { 204: { type: 'null', description: 'logged out' }, ...errors(401) },
    },
  }, async (req, reply) => {
    reply.clearCookie(SESSION_COOKIE, { path: sessionPath, httpOnly: true, sameSite: 'strict', secure: req.protocol === 'https' });
    return reply.code(204).send();
  });

  app.get<{ Querystring: { actor?: string; action?: string; cursor?: number; limit: number } }>('/api/audit', {
    schema: {
      summary: 'The audit log: every action taken through the API or the command line, newest first',
      description:
        "Who (the token's name, or cli:USER@HOST for the command line), what, on what, when (the database's clock), from where " +
        '(the address, or cli), and how it ended. Paged by cursor ' +
        'like the executions (Link, X-Next-Cursor).',
      tags: ['audit'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          actor: { type: 'string', maxLength: 300, description: "only this token's actions, or a command line user's (cli:USER@HOST)" },
          action: { type: 'string', maxLength: 64, description: 'only this action, e.g. execution.stop' },
          cursor: { type: 'integer', minimum: 1 },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
        },
      },
      response: {
        200: {
          type: 'array',
          items: ref('AuditRecord'),
          headers: { link: { type: 'string' }, 'x-next-cursor': { type: 'string' } },
        },
        ...errors(400, 401, 503),
      },
    },
  }, async (req, reply) => {
    const { records, nextCursor } = await listAudit(ns.db, { actor: req.query.actor, action: req.query.action, before: req.query.cursor, limit: req.query.limit });
    pageHeaders(reply, req.url, nextCursor);
    return records.map(auditJson);
  });
}

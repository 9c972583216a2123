import type { FastifyInstance } from 'fastify';
import { SQL } from '../../repository/sql.ts';
import type { ApiContext } from '../context.ts';
import { ASSETS, DASHBOARD_HTML } from '../dashboard.ts';
import { UNAVAILABLE, describeError, notFound } from '../errors.ts';
import { SESSION_COOKIE } from '../guard.ts';
import type { Metrics } from '../metrics.ts';
import { errors, ref } from '../schemas.ts';

/** A probe that takes longer than this answers 503. */
const PROBE_TIMEOUT_MS = 2000;

/** The console's page and files, the probes, the metrics and the OpenAPI document. */
export async function siteRoutes(app: FastifyInstance, { ns, auth, log, stopping, metrics }: ApiContext & { metrics: Metrics }) {
  const page = { public: true } as const;
  app.get('/', {
    config: page,
    schema: {
      summary: 'The web console',
      description:
        'Its page says in `<meta name="nightshift-session">` whether the request carries a valid session (or the server needs none): ' +
        'without one the console shows its login form at once, rather than asking GET /api/session for a 401.',
      tags: ['console'],
      security: [],
      produces: ['text/html'],
      response: { 200: { description: 'its page', content: { 'text/html': { schema: { type: 'string' } } } } },
    },
  }, async (req, reply) => {
    const cookie = req.cookies?.[SESSION_COOKIE];
    const signedIn = !auth.enabled || (cookie !== undefined && auth.session(cookie) !== undefined);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(DASHBOARD_HTML.replace('content="SESSION"', `content="${signedIn ? 'yes' : 'no'}"`));
  });

  app.get<{ Params: { file: string } }>('/assets/:file', {
    config: page,
    schema: {
      summary: "The console's scripts, styles and images",
      tags: ['console'],
      security: [],
      params: { type: 'object', properties: { file: { type: 'string', title: 'file name' } }, required: ['file'] },
      response: { 200: { description: 'the file', content: { '*/*': { schema: { type: 'string' } } } }, ...errors(404) },
    },
  }, async (req, reply) => {
    const asset = ASSETS.get(req.params.file);
    if (!asset) throw notFound(`no file ${req.params.file}`);
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  });

  app.get('/favicon.ico', {
    config: page,
    schema: { summary: "The console's icon", tags: ['console'], security: [], response: { 200: { description: 'an SVG image', content: { 'image/svg+xml': { schema: { type: 'string' } } } } } },
  }, async (_req, reply) => {
    const icon = ASSETS.get('favicon.svg')!;
    return reply.type(icon.type).header('cache-control', 'public, max-age=86400').send(icon.body);
  });

  /** Whether the repository answers a query within the probe timeout. */
  const repositoryAnswers = async (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ns.db.query(SQL.dbNow),
        new Promise((_, fail) => (timer = setTimeout(() => fail(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS))),
      ]);
      return true;
    } catch (err) {
      log.warn({ err: describeError(err) }, 'health probe: the job repository does not answer');
      return false;
    } finally {
      clearTimeout(timer);
    }
  };
  const probe = { public: true } as const;
  const health = { 200: ref('Health'), 503: ref('Health') };

  app.get('/livez', {
    config: probe,
    schema: {
      summary: 'Liveness of this process: 200 while it answers, without asking the job repository',
      description: 'Needs no token. For a liveness probe that must not restart every server during a database outage (/healthz and /readyz answer 503 then).',
      tags: ['probes'],
      security: [],
      response: { 200: ref('Health') },
    },
  }, async () => ({ status: 'ok' }));

  app.get('/healthz', {
    config: probe,
    schema: {
      summary: 'Liveness: 200 when the job repository answers, 503 when it does not',
      description: 'Needs no token. Like every route it checks the Host header: a probe that calls by address sends Host: localhost.',
      tags: ['probes'],
      security: [],
      response: health,
    },
  }, async (_req, reply) => ((await repositoryAnswers()) ? { status: 'ok' } : reply.code(503).send({ status: 'unavailable', error: UNAVAILABLE })));

  app.get('/readyz', {
    config: probe,
    schema: {
      summary: 'Readiness: 200 while this server takes requests',
      description: '503 when the job repository does not answer, or while the server shuts down. Needs no token.',
      tags: ['probes'],
      security: [],
      response: health,
    },
  }, async (_req, reply) => {
    if (stopping()) return reply.code(503).send({ status: 'stopping', error: 'the server is shutting down' });
    return (await repositoryAnswers()) ? { status: 'ok' } : reply.code(503).send({ status: 'unavailable', error: UNAVAILABLE });
  });

  app.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics',
      description: 'Counted from the repository at each scrape (the same on every serve process), with this process\'s own. Needs a token like the API.',
      tags: ['metrics'],
      produces: ['text/plain'],
      response: { 200: { description: 'the text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(401, 503) },
    },
  }, async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.scrape()));

  app.get('/api/openapi.json', {
    schema: {
      summary: 'This document: the OpenAPI 3 description of the API',
      tags: ['docs'],
      response: { 200: { description: 'the OpenAPI document', content: { 'application/json': { schema: { type: 'object', additionalProperties: true } } } }, ...errors(401) },
    },
  }, async () => app.swagger());
}
